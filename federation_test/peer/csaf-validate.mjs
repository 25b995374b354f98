// Runs the CSAF 2.0 strict schema test and every mandatory test of
// section 6.1 (secvisogram's csaf-validator-lib, the validator behind
// Secvisogram and the BSI's tools) over CSAF documents, for the Go tests.
// Each argument is a file; "-" reads one document from stdin. It prints
// one JSON line per document: {"file", "isValid", "failed": [{"name",
// "errors"}]}, and exits 0 whatever the verdict (the Go test decides).
import { readFileSync } from "node:fs";
// validate.js, not validateStrict.js: strict mode only refuses test
// functions the library does not define, and importing it loads every
// optional and informative test too, seconds of start-up for nothing.
import validate from "@secvisogram/csaf-validator-lib/validate.js";
import * as mandatory from "@secvisogram/csaf-validator-lib/mandatoryTests.js";
import { csaf_2_0_strict } from "@secvisogram/csaf-validator-lib/schemaTests.js";

const tests = [csaf_2_0_strict, ...Object.values(mandatory)];
for (const file of process.argv.slice(2)) {
  const doc = JSON.parse(readFileSync(file === "-" ? 0 : file, "utf8"));
  const result = await validate(tests, doc);
  const failed = result.tests
    .filter((t) => !t.isValid || (t.errors ?? []).length > 0)
    .map((t) => ({ name: t.name, errors: t.errors }));
  process.stdout.write(JSON.stringify({ file, isValid: result.isValid, tests: result.tests.length, failed }) + "\n");
}
