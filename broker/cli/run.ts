/** Process entry point of the `constellation` command. */
import { main, reportError } from './main.js';

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    reportError(err);
    process.exit(1);
  },
);
