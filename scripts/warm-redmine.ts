// Starts the installed Redmine once and stops it: its first start after the package is installed
// compiles caches, which took minutes while the suite ran beside it. Warmed here, on an idle
// machine, the test's start is quick. Skips (exit 0) when Redmine is not installed.
import { redmineUnavailable, startRedmine } from '../test/helpers/redmine.ts';

const why = redmineUnavailable();
if (why) {
  console.log(`redmine: not warmed (${why})`);
} else {
  const started = Date.now();
  const redmine = await startRedmine();
  await redmine.stop();
  console.log(`redmine: warmed in ${((Date.now() - started) / 1000).toFixed(0)} s`);
}
