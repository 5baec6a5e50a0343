#!/usr/bin/env node
// MANDATE_TOKEN=mnd_... node servers/pm.js: the `pm` server over stdio (see launch.js).
import { launch } from './launch.js';

await launch('pm');
