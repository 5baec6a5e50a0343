#!/usr/bin/env node
// MANDATE_TOKEN=mnd_... node servers/admin.js: the `admin` server over stdio (see launch.js).
import { launch } from './launch.js';

await launch('admin');
