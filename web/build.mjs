#!/usr/bin/env node
// Builds the web client into a directory chatcored can serve as its web root.
//
//   node web/build.mjs --out <build>/web/dist --gen <build>/web/gen
//        [--node-modules <dir>] [--schema schema/wire.fbs] [--flatc flatc]
//        [--no-typecheck] [--dev]
//
// CMake (web/CMakeLists.txt) runs it with node_modules in the build tree;
// by hand, `npm ci` in web/ and the defaults do.
//
// Steps, each one a plain tool with its output in the build tree:
//   1. flatc --ts: schema/wire.fbs -> <gen>/wire_generated.ts (+ one file per
//      table). Generated at build time, never committed: the schema is the
//      only source of truth, as for the C++ and Python code.
//   2. tsc --noEmit, with a tsconfig written into <gen> that points the
//      "@chatcore/wire" import at step 1's output (type errors fail the build).
//   3. esbuild: src/main.ts -> <out>/app.js, src/tick-worker.ts -> <out>/tick.js
//      (minified, with source maps), and src/protocol.ts -> <gen>/protocol.mjs
//      for the protocol round-trip test (test/protocol-roundtrip.test.mjs).
//   4. index.html (with content hashes for cache busting) and style.css.
//

import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdirSync, readFileSync, rmSync, writeFileSync, existsSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

const webDir = dirname(fileURLToPath(import.meta.url));
const { values: args } = parseArgs({
  options: {
    out: { type: "string", default: resolve(webDir, "../build/web/dist") },
    gen: { type: "string" },
    "node-modules": { type: "string", default: join(webDir, "node_modules") },
    schema: { type: "string", default: resolve(webDir, "../schema/wire.fbs") },
    flatc: { type: "string", default: "flatc" },
    "no-typecheck": { type: "boolean", default: false },
    dev: { type: "boolean", default: false },
  },
});
const out = resolve(args.out);
const gen = resolve(args.gen ?? join(out, "../gen"));
const nodeModules = resolve(args["node-modules"]);

function fail(message) {
  console.error(`web build: ${message}`);
  process.exit(1);
}

function run(cmd, cmdArgs, what) {
  const r = spawnSync(cmd, cmdArgs, { stdio: "inherit" });
  if (r.error) fail(`${what}: cannot run ${cmd}: ${r.error.message}`);
  if (r.status !== 0) fail(`${what} failed (exit ${r.status})`);
}

if (!existsSync(join(nodeModules, "esbuild")) || !existsSync(join(nodeModules, "flatbuffers"))) {
  fail(`${nodeModules} is missing or incomplete: run "npm ci" in ${webDir} (or pass --node-modules)`);
}

// 1. flatc. A clean directory, so a table removed from the schema leaves no stale file.
rmSync(gen, { recursive: true, force: true });
mkdirSync(gen, { recursive: true });
run(args.flatc, ["--ts", "-o", gen, args.schema], "flatc --ts");
const wireEntry = join(gen, "wire_generated.ts");
if (!existsSync(wireEntry)) fail(`flatc did not produce ${wireEntry}`);

// 2. Type check.
if (!args["no-typecheck"]) {
  const tsconfig = join(gen, "tsconfig.json");
  writeFileSync(
    tsconfig,
    JSON.stringify(
      {
        extends: join(webDir, "tsconfig.json"),
        compilerOptions: {
          paths: {
            "@chatcore/wire": [wireEntry],
            // The generated files import "flatbuffers" from the build tree,
            // which has no node_modules of its own.
            flatbuffers: [join(nodeModules, "flatbuffers")],
          },
        },
        include: [join(webDir, "src/**/*.ts")],
      },
      null,
      2,
    ),
  );
  run(process.execPath, [join(nodeModules, "typescript/bin/tsc"), "-p", tsconfig], "type check (tsc)");
}

// 3. Bundles.
const esbuild = await import(join(nodeModules, "esbuild/lib/main.js"));
const common = {
  bundle: true,
  // Both pinned to this build's inputs, whatever node_modules may lie
  // around the source tree.
  alias: { "@chatcore/wire": wireEntry, flatbuffers: join(nodeModules, "flatbuffers") },
  nodePaths: [nodeModules],
  logLevel: "warning",
  // BigInt literals and ?? need ES2020; every browser of the last few years has it.
  target: "es2020",
};
mkdirSync(out, { recursive: true });
await esbuild.build({
  ...common,
  entryPoints: { app: join(webDir, "src/main.ts"), tick: join(webDir, "src/tick-worker.ts") },
  outdir: out,
  format: "iife",
  platform: "browser",
  minify: !args.dev,
  sourcemap: "linked",
  legalComments: "linked",
});
await esbuild.build({
  ...common,
  entryPoints: [join(webDir, "src/protocol.ts")],
  outfile: join(gen, "protocol.mjs"),
  format: "esm",
  platform: "neutral",
  mainFields: ["module", "main"],
});

// 4. Static files.
const hash = (file) => createHash("sha256").update(readFileSync(file)).digest("hex").slice(0, 12);
const css = readFileSync(join(webDir, "style.css"));
writeFileSync(join(out, "style.css"), css);
const html = readFileSync(join(webDir, "index.html"), "utf8")
  .replace("@HASH_CSS@", hash(join(out, "style.css")))
  .replace("@HASH_JS@", hash(join(out, "app.js")));
writeFileSync(join(out, "index.html"), html);
console.log(`web build: ${out}`);
