#!/usr/bin/env node
// MANDATE_TOKEN=mnd_... node servers/core.js: the `core` server over stdio (see launch.js).
import { launch } from './launch.js';

await launch('core');
