// Writes each wasm file given into the directory given first, without its custom sections
// (names, producers, the linker's relocations): Binaryen's strip passes, in one process for
// every file instead of a wasm-opt start per file.
//   node scripts/lib/strip-wasm.mjs OUT_DIR FILE.wasm...
import { createRequire } from "node:module";
import fs from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";

// Binaryen comes with end2end/'s npm packages (as wasm-opt does).
const end2end = createRequire(new URL("../../end2end/package.json", import.meta.url));
const { default: binaryen } = await import(pathToFileURL(end2end.resolve("binaryen")).href);

const [outDir, ...files] = process.argv.slice(2);
for (const file of files) {
  const module = binaryen.readBinary(fs.readFileSync(file));
  module.setFeatures(binaryen.Features.All);
  module.runPasses(["strip-debug", "strip-producers"]);
  fs.writeFileSync(path.join(outDir, path.basename(file)), module.emitBinary());
  module.dispose();
}
