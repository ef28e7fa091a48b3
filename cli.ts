#!/usr/bin/env node
import 'reflect-metadata';
import { builtinModules } from './builtins.js';
import { main } from './core/cli/main.js';

process.exitCode = await main(process.argv.slice(2), builtinModules);
