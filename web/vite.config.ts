// Two entries: the operator console (index.html, served at /) and the field app for phones
// (field.html, served at /field). dispatch serves dist/ (see dispatch/src/api/web.rs).
import { defineConfig } from 'vite'
import vue from '@vitejs/plugin-vue'
import { resolve } from 'node:path'

export default defineConfig({
  plugins: [vue()],
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    chunkSizeWarningLimit: 1500,
    rollupOptions: {
      input: {
        index: resolve(__dirname, 'index.html'),
        field: resolve(__dirname, 'field.html'),
      },
    },
  },
  server: {
    // `npx vite` against a dispatch on :8080 (make demo)
    proxy: { '/api': { target: 'http://127.0.0.1:8080', ws: true } },
  },
})
