// Builds the widget bundles into ../lmql_nb/static/ (kept in the repository, so that
// installing lmql_nb needs no node): every view in src/views/<name>.js becomes
// static/<name>.js (an ES module, what anywidget loads), plus standalone.js (to_html()'s
// page script) and widgets.css. `node build.mjs --check` builds into memory and fails if
// the committed files differ from what the sources give.
import * as esbuild from "esbuild";
import { readFileSync, readdirSync, existsSync, mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const outdir = join(here, "..", "lmql_nb", "static");
const check = process.argv.includes("--check");

const common = {
  bundle: true,
  write: false,
  target: "es2020",
  legalComments: "none",
  logLevel: "warning",
  // "</script" must never appear in a bundle: to_html() inlines it in a page
  supported: { "inline-script": false },
};

const views = readdirSync(join(here, "src", "views")).filter((name) => name.endsWith(".js")).sort();
const builds = [
  ...views.map((name) => ({ entryPoints: [join(here, "src", "views", name)], format: "esm", outfile: join(outdir, name) })),
  { entryPoints: [join(here, "src/standalone.js")], format: "iife", outfile: join(outdir, "standalone.js") },
  { entryPoints: [join(here, "src/widgets.css")], outfile: join(outdir, "widgets.css") },
];

let stale = [];
for (const options of builds) {
  const result = await esbuild.build({ ...common, ...options });
  for (const file of result.outputFiles) {
    if (/<\/script/i.test(file.text)) {
      throw new Error(`${file.path} contains "</script", which would break to_html()`);
    }
    if (check) {
      const current = existsSync(file.path) ? readFileSync(file.path, "utf8") : null;
      if (current !== file.text) stale.push(file.path);
    } else {
      mkdirSync(dirname(file.path), { recursive: true });
      writeFileSync(file.path, file.text);
    }
  }
}
if (stale.length) {
  console.error(`out of date (run "npm run build" in js/):\n  ${stale.join("\n  ")}`);
  process.exit(1);
}
console.log(check ? "bundles are up to date" : `built into ${outdir}`);
