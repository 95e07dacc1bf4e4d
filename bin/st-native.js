#!/usr/bin/env node
// The st-native CLI; the code lives in ts/cli (compiled to dist/).
import { run } from '../dist/ts/cli/main.js';

await run();
