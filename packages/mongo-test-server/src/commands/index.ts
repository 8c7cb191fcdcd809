import type { CommandSpec } from "../context.js";
import { adminCommands } from "./admin.js";
import { authCommands } from "./auth.js";
import { crudCommands } from "./crud.js";
import { ddlCommands } from "./ddl.js";

/** Every command the stand-in runs, by the name that is the first field of its body. */
export const commands: ReadonlyMap<string, CommandSpec> = new Map<string, CommandSpec>([
  ...Object.entries(adminCommands),
  ...Object.entries(authCommands),
  ...Object.entries(crudCommands),
  ...Object.entries(ddlCommands),
  [
    "listCommands",
    {
      run: () => ({
        commands: Object.fromEntries([...commands.entries()].map(([name, spec]) => [name, { help: "", requiresAuth: spec.privilege !== "none", adminOnly: spec.privilege === "cluster" }])),
        ok: 1,
      }),
      privilege: "none",
    },
  ],
]);
