// The two solc calls forge makes, answered by npm's solc (see bin/solc).
const path = require("path");
const solc = require(path.join(__dirname, "..", "..", "node_modules", "solc"));

const args = process.argv.slice(2);
if (args.includes("--version")) {
  process.stdout.write(`solc, the solidity compiler commandline interface\nVersion: ${solc.version()}\n`);
} else if (args.includes("--standard-json")) {
  const chunks = [];
  process.stdin.on("data", (c) => chunks.push(c));
  process.stdin.on("end", () => {
    process.stdout.write(solc.compile(Buffer.concat(chunks).toString("utf8")));
  });
} else {
  process.stderr.write(`solc wrapper: only --version and --standard-json are supported, got ${args.join(" ")}\n`);
  process.exit(2);
}
