export { App, type AppProps } from "./app";
export { DroveError, HostError, ValidationError } from "./errors";
export { loadInventory, type Inventory, type InventoryMachine } from "./inventory";
export { quote, sh } from "./quote";
export { Host, type HostProps } from "../constructs/host";
export { File, type FileProps } from "../constructs/file";
