/** Builds the web console (web/) into dist/web/, which broker/http/console.ts serves at /. */
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  base: '/',
  // Nothing is copied verbatim: every file the page loads goes through the bundle.
  publicDir: false,
  logLevel: 'warn',
  oxc: { jsx: { runtime: 'automatic', importSource: 'preact' } },
  build: {
    outDir: fileURLToPath(new URL('../dist/web', import.meta.url)),
    emptyOutDir: true,
    target: 'es2022',
    // The polyfill would be inline-free already, but modern browsers need none; the CSP allows no inline script.
    modulePreload: { polyfill: false },
    // Inlined assets become data: URLs; only the favicon is small enough, and img-src allows data:.
    assetsInlineLimit: 4096,
    reportCompressedSize: false,
    sourcemap: false,
  },
});
