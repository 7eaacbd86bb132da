/** Process entry point of the `constellation` command; its exit codes are the table in exit-codes.ts. */
import { exitCodeOf } from './exit-codes.js';
import { main, reportError } from './main.js';
import { errorDocument, writeJson } from './output.js';

const argv = process.argv.slice(2);
main(argv).then(
  (code) => process.exit(code),
  (err: unknown) => {
    const code = exitCodeOf(err);
    reportError(err);
    // Under --json a failure is a JSON document on stdout as well, for the script that called it.
    if (argv.includes('--json')) writeJson(errorDocument(err, code));
    process.exitCode = code;
    process.stdout.write('', () => process.exit(code));
  },
);
