#!/usr/bin/env node
// The st-native CLI; the code lives in ts/cli, compiled to dist/ by `npm run build:ts`.
let cli;
try {
  cli = await import('../dist/ts/cli/main.js');
} catch (e) {
  if (e?.code !== 'ERR_MODULE_NOT_FOUND' || !String(e.message).includes('dist/ts/cli/main.js')) throw e;
  process.stderr.write('st-native: the TypeScript is not compiled (dist/ts/cli/main.js is missing); run `npm run build` in the package.\n');
  process.exit(1);
}
await cli.run();
