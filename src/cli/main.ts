#!/usr/bin/env node
console.log("ssd1b: placeholder");
