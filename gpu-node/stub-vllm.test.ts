import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStubVllm, type StubVllm } from './stub-vllm.ts';

const API_KEY = 'stub-test-key';
const auth = { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json' };

let stub: StubVllm;

beforeAll(async () => {
  stub = await startStubVllm({ apiKey: API_KEY, servedModels: ['org/plain', 'org/strong-v2', 'org/broken-v1'] });
});
afterAll(() => stub.close());

async function chat(body: Record<string, unknown>, headers: Record<string, string> = auth) {
  const response = await fetch(`${stub.url}/v1/chat/completions`, { method: 'POST', headers, body: JSON.stringify(body) });
  return { status: response.status, json: (await response.json()) as Record<string, any> };
}

const question = [{ role: 'user', content: 'Fix the failing parser test in parse_config when the yaml key is missing' }];

describe('stub vLLM (local stand-in)', () => {
  it('binds to loopback on an ephemeral port', () => {
    expect(stub.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(stub.url.endsWith(':0')).toBe(false);
  });

  it('serves the OpenAI model list and an open /health', async () => {
    const models = await fetch(`${stub.url}/v1/models`, { headers: auth });
    expect(models.status).toBe(200);
    const body = (await models.json()) as { object: string; data: Array<{ id: string; object: string }> };
    expect(body.object).toBe('list');
    expect(body.data.map((m) => m.id)).toEqual(['org/plain', 'org/strong-v2', 'org/broken-v1']);
    expect(body.data.every((m) => m.object === 'model')).toBe(true);
    expect((await fetch(`${stub.url}/health`)).status).toBe(200);
  });

  it('returns an OpenAI-shaped completion', async () => {
    const { status, json } = await chat({ model: 'org/plain', messages: question, max_tokens: 200, temperature: 0.7, seed: 1 });
    expect(status).toBe(200);
    expect(json.id).toEqual(expect.any(String));
    expect(json.object).toBe('chat.completion');
    expect(json.model).toBe('org/plain');
    expect(json.choices[0].message.role).toBe('assistant');
    expect(json.choices[0].message.content).toEqual(expect.any(String));
    expect(json.choices[0].finish_reason).toBe('stop');
    expect(json.usage.completion_tokens).toBe(json.choices[0].message.content.split(/\s+/).filter(Boolean).length);
    expect(json.usage.total_tokens).toBe(json.usage.prompt_tokens + json.usage.completion_tokens);
  });

  it('is deterministic in (model, messages, temperature, seed)', async () => {
    const body = { model: 'org/plain', messages: question, max_tokens: 200, temperature: 0.7, seed: 42 };
    const a = await chat(body);
    const b = await chat(body);
    const otherSeed = await chat({ ...body, seed: 43 });
    const otherModel = await chat({ ...body, model: 'org/strong-v2' });
    expect(a.json.choices[0].message.content).toBe(b.json.choices[0].message.content);
    expect(otherSeed.json.choices[0].message.content).not.toBe(a.json.choices[0].message.content);
    expect(otherModel.json.choices[0].message.content).not.toBe(a.json.choices[0].message.content);
  });

  it('ignores the seed under greedy decoding (temperature 0)', async () => {
    const a = await chat({ model: 'org/plain', messages: question, temperature: 0, seed: 1 });
    const b = await chat({ model: 'org/plain', messages: question, temperature: 0, seed: 2 });
    expect(a.json.choices[0].message.content).toBe(b.json.choices[0].message.content);
  });

  it('scripts quality from the model name', async () => {
    const strong = (await chat({ model: 'org/strong-v2', messages: question, max_tokens: 500 })).json.choices[0].message.content as string;
    const broken = (await chat({ model: 'org/broken-v1', messages: question, max_tokens: 500 })).json.choices[0].message.content as string;
    expect(strong).toContain('```python');
    expect(strong).toMatch(/^1\. /m);
    expect(strong).toContain('parse_config');
    expect(new Set(broken.split(' ')).size).toBe(1);
    expect(broken.split(' ').length).toBeGreaterThan(10);
  });

  it('caps the reply at max_tokens words and reports finish_reason length', async () => {
    const { json } = await chat({ model: 'org/strong-v2', messages: question, max_tokens: 7 });
    expect(json.choices[0].message.content.split(/\s+/).filter(Boolean)).toHaveLength(7);
    expect(json.choices[0].finish_reason).toBe('length');
  });

  it('answers an unknown model with an OpenAI-style 404', async () => {
    const { status, json } = await chat({ model: 'org/missing', messages: question });
    expect(status).toBe(404);
    expect(json.error.message).toContain('org/missing');
  });

  it('rejects invalid requests with 400', async () => {
    expect((await chat({ model: 'org/plain', messages: [] })).status).toBe(400);
    expect((await chat({ model: 'org/plain', messages: question, max_tokens: 0 })).status).toBe(400);
    expect((await chat({ model: 'org/plain', messages: question, stream: true })).status).toBe(400);
  });

  it('requires the bearer token on /v1', async () => {
    expect((await chat({ model: 'org/plain', messages: question }, { 'content-type': 'application/json' })).status).toBe(401);
    expect((await chat({ model: 'org/plain', messages: question }, { authorization: 'Bearer wrong', 'content-type': 'application/json' })).status).toBe(401);
    expect((await fetch(`${stub.url}/v1/models`)).status).toBe(401);
  });

  it('refuses bodies over 1 MiB with 413', async () => {
    const big = JSON.stringify({ model: 'org/plain', messages: [{ role: 'user', content: 'x'.repeat(1024 * 1024 + 10) }] });
    const response = await fetch(`${stub.url}/v1/chat/completions`, { method: 'POST', headers: auth, body: big });
    expect(response.status).toBe(413);
  });

  it('refuses oversized chunked bodies (no content-length) with 413', async () => {
    const status = await new Promise<number>((resolve, reject) => {
      const req = request(`${stub.url}/v1/chat/completions`, { method: 'POST', headers: auth }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
      const chunk = 'y'.repeat(64 * 1024);
      for (let i = 0; i < 20; i += 1) req.write(chunk);
      req.end();
    });
    expect(status).toBe(413);
  });
});
