export * from "./autoencoder-tiny.js";
