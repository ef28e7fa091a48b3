// Mocha root hooks: importing @tensorflow/tfjs-backend-wasm registers wasm as the highest
// priority backend before it is initialised, so every test process picks one explicitly.
// Tests default to the pure-JS cpu reference; tests that need wasm switch and switch back.
import 'reflect-metadata';
import { selectBackend } from '../core/backends/select.js';

export const mochaHooks = {
  async beforeAll(): Promise<void> {
    await selectBackend('cpu');
  },
};
