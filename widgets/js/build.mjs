// Builds src/ into ../static/churnsaver.js: one minified IIFE. The banner records a SHA-256 of the
// sources and the esbuild version, so a test can tell a stale vendored file from a fresh one.
import { createHash } from "node:crypto";
import { readFileSync, readdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import * as esbuild from "esbuild";

const here = dirname(fileURLToPath(import.meta.url));
const sources = join(here, "src");
const digest = createHash("sha256");
for (const name of readdirSync(sources).sort()) {
  digest.update(`${name}\n`);
  digest.update(readFileSync(join(sources, name)));
}

await esbuild.build({
  entryPoints: [join(sources, "index.js")],
  outfile: join(here, "..", "static", "churnsaver.js"),
  bundle: true,
  minify: true,
  format: "iife",
  target: ["es2022"],
  charset: "utf8",
  legalComments: "none",
  banner: { js: `/* Churn Saver widget v1 · built by esbuild ${esbuild.version} · sources sha256 ${digest.digest("hex")} */` },
});
