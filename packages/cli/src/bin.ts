/** Entry point of the `airlock` binary. */
import { run } from "./index.js";

process.exitCode = await run(process.argv.slice(2), process.env);
