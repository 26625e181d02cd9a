// Drives `loramixer serve` with the official openai npm client (4.x: the line that still runs on Debian 12's Node 18).
// Makes a tiny model with the built CLI (`pretrain`, two steps), starts the server on a free loopback port, checks
// models, completions, chat, streaming, errors and cancellation, stops the server with SIGTERM (exit 0 expected) and
// exits non-zero when any check fails. Usage: npm ci && node run.mjs   (LORAMIXER_CLI=path/to/LoraMixer.Cli.dll to
// choose the tool; by default the Debug build of the repository, built when missing).
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import OpenAI from 'openai';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const cli = process.env.LORAMIXER_CLI ?? join(repo, 'src', 'LoraMixer.Cli', 'bin', 'Debug', 'net10.0', 'LoraMixer.Cli.dll');

function run(args, what) {
  const r = spawnSync('dotnet', args, { stdio: ['ignore', 'inherit', 'inherit'] });
  if (r.status !== 0) throw new Error(`${what} failed (exit ${r.status})`);
}

if (!existsSync(cli)) run(['build', join(repo, 'src', 'LoraMixer.Cli'), '-v', 'q', '-nologo'], 'building the CLI');
const work = mkdtempSync(join(tmpdir(), 'loramixer-openai-node-'));
const model = join(work, 'base');
run([cli, 'pretrain', '--steps', '2', '--documents', '100', '--out', model], 'making a tiny model');

const server = spawn('dotnet', [cli, 'serve', '--model', model, '--model-name', 'base', '--port', '0', '--max-batch', '4', '--step-interval-ms', '20'],
  { stdio: ['ignore', 'pipe', 'inherit'] });
const exited = new Promise((done) => server.on('exit', (code, signal) => done({ code, signal })));
const url = await new Promise((done, fail) => {
  let out = '';
  const timer = setTimeout(() => fail(new Error('serve did not start within 120 s')), 120_000);
  server.stdout.on('data', (chunk) => {
    out += chunk;
    const m = out.match(/http:\/\/\S+/);
    if (m) { clearTimeout(timer); done(m[0]); }
  });
  server.on('exit', (code) => fail(new Error(`serve exited early (code ${code})`)));
});
console.log(`server at ${url}`);
const client = new OpenAI({ baseURL: new URL('v1', url).toString(), apiKey: 'unused', maxRetries: 0, timeout: 120_000 });

const results = [];
async function check(name, body) {
  try {
    await body();
    results.push([name, true]);
    console.log(`ok    ${name}`);
  } catch (e) {
    results.push([name, false]);
    console.log(`FAIL  ${name}: ${e?.stack ?? e}`);
  }
}
function expect(condition, message) {
  if (!condition) throw new Error(message);
}

await check('models lists the base model', async () => {
  const page = await client.models.list();
  const ids = page.data.map((m) => m.id);
  expect(ids.includes('base'), `models: ${ids}`);
  expect(page.data[0].object === 'model' && page.data[0].owned_by === 'loramixer', JSON.stringify(page.data[0]));
});

await check('completion returns text, a finish reason and usage', async () => {
  const r = await client.completions.create({ model: 'base', prompt: 'add 3 1:', max_tokens: 8, temperature: 0 });
  expect(r.object === 'text_completion', r.object);
  expect(typeof r.choices[0].text === 'string', 'text');
  expect(['stop', 'length'].includes(r.choices[0].finish_reason), r.choices[0].finish_reason);
  expect(r.usage.completion_tokens <= 8 && r.usage.prompt_tokens > 0, JSON.stringify(r.usage));
});

let wholeChat;
await check('chat completion returns an assistant message', async () => {
  const r = await client.chat.completions.create({ model: 'base', messages: [{ role: 'user', content: 'say 2:' }], max_tokens: 12, temperature: 0 });
  wholeChat = r.choices[0].message.content;
  expect(r.object === 'chat.completion' && r.choices[0].message.role === 'assistant', JSON.stringify(r.choices[0]));
  expect(r.usage.total_tokens === r.usage.prompt_tokens + r.usage.completion_tokens, JSON.stringify(r.usage));
});

await check('streamed chat concatenates to the same greedy text and reports usage', async () => {
  const stream = await client.chat.completions.create({
    model: 'base', messages: [{ role: 'user', content: 'say 2:' }], max_tokens: 12, temperature: 0, stream: true, stream_options: { include_usage: true },
  });
  let text = '';
  let finish = null;
  let usage = null;
  for await (const chunk of stream) {
    expect(chunk.object === 'chat.completion.chunk', chunk.object);
    for (const c of chunk.choices) {
      text += c.delta?.content ?? '';
      finish ??= c.finish_reason;
    }
    usage ??= chunk.usage;
  }
  expect(text === wholeChat, `streamed ${JSON.stringify(text)} vs ${JSON.stringify(wholeChat)}`);
  expect(finish !== null, 'finish reason');
  expect(usage && usage.completion_tokens > 0, JSON.stringify(usage));
});

await check('streamed completion ends with a finish reason', async () => {
  const stream = await client.completions.create({ model: 'base', prompt: 'abc', max_tokens: 6, temperature: 0, stream: true });
  let chunks = 0;
  let finish = null;
  for await (const chunk of stream) {
    chunks++;
    finish ??= chunk.choices[0]?.finish_reason;
  }
  expect(chunks >= 2 && finish === 'length', `${chunks} chunks, finish ${finish}`);
});

await check('an unknown model is a 404 with OpenAI error JSON', async () => {
  try {
    await client.chat.completions.create({ model: 'nope', messages: [{ role: 'user', content: 'x' }] });
    throw new Error('no error');
  } catch (e) {
    expect(e instanceof OpenAI.NotFoundError, `${e}`);
    expect(e.status === 404 && e.code === 'model_not_found' && e.param === 'model', `${e.status} ${e.code} ${e.param}`);
  }
});

await check('a wrongly typed field is a 400 naming it', async () => {
  try {
    await client.chat.completions.create({ model: 'base', messages: [{ role: 'user', content: 'x' }], temperature: 'hot' });
    throw new Error('no error');
  } catch (e) {
    expect(e instanceof OpenAI.BadRequestError && e.param === 'temperature', `${e}`);
  }
});

await check('empty messages are a 400', async () => {
  try {
    await client.chat.completions.create({ model: 'base', messages: [] });
    throw new Error('no error');
  } catch (e) {
    expect(e instanceof OpenAI.BadRequestError && e.param === 'messages', `${e}`);
  }
});

await check('an aborted stream frees its slot', async () => {
  const controller = new AbortController();
  const stream = await client.chat.completions.create(
    { model: 'base', messages: [{ role: 'user', content: 'go on' }], max_tokens: 200, ignore_eos: true, stream: true }, { signal: controller.signal });
  let seen = 0;
  try {
    for await (const chunk of stream) if (++seen === 2) controller.abort();
  } catch (e) {
    expect(e instanceof OpenAI.APIUserAbortError || e.name === 'AbortError', `${e}`);
  }
  const started = Date.now();
  let metrics = '';
  while (Date.now() - started < 20_000) {
    metrics = await (await fetch(new URL('metrics', url))).text();
    if (/loramixer_batch_size 0\b/.test(metrics) && /outcome="cancelled"} [1-9]/.test(metrics)) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('the aborted request is still running:\n' + metrics);
});

server.kill('SIGTERM');
const { code, signal } = await exited;
await check('SIGTERM stops the server with exit code 0', async () => expect(code === 0, `exit code ${code}, signal ${signal}`));
rmSync(work, { recursive: true, force: true });

const failed = results.filter(([, ok]) => !ok).length;
console.log(`openai-node: ${results.length - failed} of ${results.length} checks passed`);
process.exit(failed === 0 ? 0 : 1);
