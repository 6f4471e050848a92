export * from "./connection";
export * from "./host-key";
export * from "./pool";
