// Build configuration for the SafetyHeatmap page.
//
// The output goes to ../frontend_dist, which is committed: `make run` and the web image serve it
// without Node.js, and `make test-frontend` rebuilds into a temporary directory and fails when the
// committed copy differs. So the build must be byte-for-byte reproducible: content-hashed file
// names, no timestamps, no absolute paths.
//
// The page runs under a strict Content-Security-Policy (script-src 'self'; style-src 'self'), so
// the build must not add inline scripts or styles: the module-preload polyfill is disabled, and
// small images (Leaflet's marker and control icons) are inlined into the CSS as data: URIs, which
// img-src allows.
import react from "@vitejs/plugin-react";
import { defineConfig } from "vitest/config";

export default defineConfig({
  base: "/",
  plugins: [react()],
  // `npm run dev`: hot reload, with the API of a running stack (`make run`) behind /api.
  server: {
    proxy: { "/api": process.env.SAFETYHEATMAP_API ?? "http://127.0.0.1:8000" },
  },
  build: {
    outDir: "../frontend_dist",
    emptyOutDir: true,
    assetsDir: "assets",
    modulePreload: { polyfill: false },
    sourcemap: false,
    reportCompressedSize: false,
    // Third-party licences of everything bundled (React, Leaflet, ...), next to the assets.
    license: { fileName: "assets/licenses.md" },
  },
  test: {
    environment: "jsdom",
    include: ["tests/**/*.test.{ts,tsx}"],
    setupFiles: ["tests/setup.ts"],
    restoreMocks: true,
  },
});
