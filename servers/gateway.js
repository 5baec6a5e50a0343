#!/usr/bin/env node
// MANDATE_TOKEN=mnd_... node servers/gateway.js: the `gateway` server over stdio (see launch.js).
import { launch } from './launch.js';

await launch('gateway');
