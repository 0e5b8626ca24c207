// Uploads a file with tus-js-client (the tus JavaScript client) under Node.
//
//   node tus-js-upload.mjs ENDPOINT COOKIE FILE interrupt
//     aborts the upload in the middle of its one PATCH, then resumes it from its URL with a
//     new Upload, as a page reload does.
//   node tus-js-upload.mjs ENDPOINT COOKIE FILE bench [CHUNK_MIB]
//     uploads the file once and prints the time it took and the speed in MiB/s.
import fs from 'node:fs';
import path from 'node:path';
import * as tus from 'tus-js-client';

const [endpoint, cookie, file, mode = 'interrupt', chunkMib] = process.argv.slice(2);
const size = fs.statSync(file).size;

// `options(holder, resolve)` may read the upload as `holder.upload` from its callbacks.
function start(options) {
  return new Promise((resolve, reject) => {
    const holder = {};
    holder.upload = new tus.Upload(fs.createReadStream(file), {
      endpoint,
      headers: { Cookie: cookie },
      metadata: { filename: path.basename(file) },
      uploadSize: size,
      retryDelays: [0, 200, 500, 1000, 2000],
      onError: reject,
      onSuccess: () => resolve(holder.upload),
      ...options(holder, resolve),
    });
    holder.upload.start();
  });
}

async function headOffset(url) {
  const response = await fetch(url, {
    method: 'HEAD',
    headers: { Cookie: cookie, 'Tus-Resumable': '1.0.0' },
  });
  return Number(response.headers.get('upload-offset'));
}

if (mode === 'interrupt') {
  let aborted = false;
  // A stream source needs a finite chunk size; one chunk holds the whole file.
  const first = await start((holder, resolve) => ({
    chunkSize: size,
    onProgress: (sent) => {
      if (!aborted && sent > size / 3) {
        aborted = true;
        holder.upload.abort().then(() => {
          console.log(`aborted at ${sent} of ${size}`);
          resolve(holder.upload);
        });
      }
    },
  }));
  // Let the server notice the broken request and keep what arrived.
  await new Promise((r) => setTimeout(r, 500));
  const kept = await headOffset(first.url);
  if (!(kept > 0 && kept < size)) throw new Error(`the server kept ${kept} bytes`);
  console.log(`resumed from ${kept}`);
  await start(() => ({ uploadUrl: first.url, chunkSize: 4 << 20 }));
  console.log('done');
} else if (mode === 'bench') {
  const chunkSize = Number(chunkMib || 64) * 1024 * 1024;
  const began = process.hrtime.bigint();
  await start(() => ({ chunkSize }));
  const seconds = Number(process.hrtime.bigint() - began) / 1e9;
  const cpu = process.cpuUsage();
  const cpu_seconds = (cpu.user + cpu.system) / 1e6;
  console.log(JSON.stringify({ bytes: size, seconds, mib_per_s: size / 1048576 / seconds, cpu_seconds }));
} else {
  throw new Error(`unknown mode ${mode}`);
}
