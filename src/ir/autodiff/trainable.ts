/** Moved to ir/passes/trainable.ts (graph passes live there); this path stays for existing imports. */
export * from "../passes/trainable.js";
