/** Moved to ir/passes/lora-branch.ts (graph passes live there); this path stays for existing imports. */
export * from "../passes/lora-branch.js";
