/** The SSH keeper's process (see keeper.ts): `<socket path> <idle milliseconds>`. */
import { serveKeeper } from "./keeper";

serveKeeper(process.argv[2], Number(process.argv[3])).catch(() => process.exit(1));
