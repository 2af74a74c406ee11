// The unmodified @neondatabase/serverless driver against palisade's SQL broker. Run by the Java test
// io.palisade.broker.TestNeonDriver with BROKER_PORT and DATABASE_URL (postgresql://user:pw@<db-id>.db.localhost/db).
// Only neonConfig.fetchEndpoint, wsProxy, useSecureWebSocket and webSocketConstructor are set.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import ws from 'ws';
import { neon, neonConfig, Pool, NeonDbError } from '@neondatabase/serverless';

const port = process.env.BROKER_PORT;
const url = process.env.DATABASE_URL;
if (!port || !url) {
  throw new Error('set BROKER_PORT and DATABASE_URL');
}
neonConfig.fetchEndpoint = () => `http://127.0.0.1:${port}/sql`;
neonConfig.wsProxy = (host, p) => `127.0.0.1:${port}/v2?address=${host}:${p}`;
neonConfig.useSecureWebSocket = false;
neonConfig.webSocketConstructor = ws;

const sql = neon(url);
const wrongUrl = url.replace(/:\/\/([^:]+):[^@]+@/, '://$1:wrong-password@');

test('tagged-template params', async () => {
  const rows = await sql`SELECT ${42}::int AS n, ${'it\'s "quoted"'}::text AS s, ${null}::int AS nothing`;
  assert.deepEqual(rows, [{ n: 42, s: 'it\'s "quoted"', nothing: null }]);
});

test('sql.query with $n params, arrayMode and fullResults', async () => {
  assert.deepEqual(await sql.query('SELECT $1::int + $2::int AS sum', [1, 2]), [{ sum: 3 }]);
  assert.deepEqual(await sql.query('SELECT 1 AS a, 2 AS b', [], { arrayMode: true }), [[1, 2]]);
  const full = await sql.query('SELECT generate_series(1, 3) AS n', [], { fullResults: true });
  assert.equal(full.command, 'SELECT');
  assert.equal(full.rowCount, 3);
  assert.equal(full.fields[0].name, 'n');
  assert.equal(full.fields[0].dataTypeID, 23);
  assert.deepEqual(full.rows.map((r) => r.n), [1, 2, 3]);
});

test('type round trips', async () => {
  const when = new Date('2024-02-29T12:34:56.789Z');
  const [row] = await sql`SELECT
      9007199254740993::int8 AS big, ${'12345678901234567890.0123'}::numeric AS num,
      true AS yes, false AS no, ${{ a: 1, b: [true, null] }}::jsonb AS jb, '{"k": "v"}'::json AS j,
      ${[1, 2, 3]}::int[] AS ints, ARRAY['a b', NULL, 'c"d'] AS texts, ${Buffer.from([0, 1, 254, 255])}::bytea AS bin,
      ${when}::timestamptz AS ts, NULL::text AS nothing, 1.5::float8 AS f, 'NaN'::float8 AS nan`;
  assert.equal(row.big, '9007199254740993');
  assert.equal(row.num, '12345678901234567890.0123');
  assert.equal(row.yes, true);
  assert.equal(row.no, false);
  assert.deepEqual(row.jb, { a: 1, b: [true, null] });
  assert.deepEqual(row.j, { k: 'v' });
  assert.deepEqual(row.ints, [1, 2, 3]);
  assert.deepEqual(row.texts, ['a b', null, 'c"d']);
  assert.ok(Buffer.isBuffer(row.bin));
  assert.deepEqual([...row.bin], [0, 1, 254, 255]);
  assert.ok(row.ts instanceof Date);
  assert.equal(row.ts.toISOString(), when.toISOString());
  assert.equal(row.nothing, null);
  assert.equal(row.f, 1.5);
  assert.ok(Number.isNaN(row.nan));
});

test('transaction with isolation level and read-only', async () => {
  const [iso, ro, n] = await sql.transaction(
    [sql`SHOW transaction_isolation`, sql`SHOW transaction_read_only`, sql`SELECT ${5}::int * 2 AS n`],
    { isolationLevel: 'Serializable', readOnly: true },
  );
  assert.deepEqual(iso, [{ transaction_isolation: 'serializable' }]);
  assert.deepEqual(ro, [{ transaction_read_only: 'on' }]);
  assert.deepEqual(n, [{ n: 10 }]);
  await assert.rejects(
    sql.transaction([sql`CREATE TABLE never_made (x int)`], { readOnly: true }),
    (e) => e instanceof NeonDbError && e.code === '25006',
  );
});

test('a failing transaction rolls back as a whole', async () => {
  await sql`CREATE TABLE IF NOT EXISTS driver_tx (id int PRIMARY KEY)`;
  await assert.rejects(
    sql.transaction((tx) => [tx`INSERT INTO driver_tx VALUES (1)`, tx`INSERT INTO driver_tx VALUES (1)`]),
    (e) => e instanceof NeonDbError && e.code === '23505' && e.constraint === 'driver_tx_pkey',
  );
  assert.deepEqual(await sql`SELECT count(*)::int AS c FROM driver_tx`, [{ c: 0 }]);
  const results = await sql.transaction((tx) => [
    tx`INSERT INTO driver_tx VALUES (1), (2)`,
    tx`SELECT count(*)::int AS c FROM driver_tx`,
  ]);
  assert.deepEqual(results[1], [{ c: 2 }]);
});

test('errors are NeonDbError with Postgres fields', async () => {
  await assert.rejects(sql`SELECT * FROM nope`, (e) => {
    assert.ok(e instanceof NeonDbError);
    assert.equal(e.code, '42P01');
    assert.equal(e.message, 'relation "nope" does not exist');
    assert.equal(e.position, '15');
    assert.equal(e.severity, 'ERROR');
    assert.equal(e.routine, 'parserOpenTable');
    return true;
  });
  await assert.rejects(sql`SELECT 1/0`, (e) => e instanceof NeonDbError && e.code === '22012');
});

test('a wrong password is refused like an unknown database', async () => {
  await assert.rejects(neon(wrongUrl)`SELECT 1`, (e) => {
    assert.ok(e instanceof NeonDbError);
    assert.match(e.message, /^password authentication failed for user '/);
    return true;
  });
  const unknown = url.replace(/@[^.]+\./, '@db-unknown.');
  await assert.rejects(neon(unknown)`SELECT 1`,
    (e) => e instanceof NeonDbError && /password authentication/.test(e.message));
});

test('Pool session over WebSocket', async () => {
  const pool = new Pool({ connectionString: url });
  try {
    const client = await pool.connect();
    try {
      await client.query('BEGIN');
      await client.query('CREATE TEMP TABLE ws_t (x int) ON COMMIT DROP');
      await client.query('INSERT INTO ws_t SELECT generate_series(1, $1::int)', [100]);
      const { rows } = await client.query('SELECT sum(x)::int AS s, current_setting($1) AS app FROM ws_t',
        ['application_name']);
      assert.equal(rows[0].s, 5050);
      await client.query('COMMIT');
      const big = await client.query('SELECT repeat($1, 200000) AS r', ['z']);
      assert.equal(big.rows[0].r.length, 200000);
      const sent = await client.query('SELECT length($1::text) AS n', ['y'.repeat(300000)]);
      assert.equal(sent.rows[0].n, 300000);
      await assert.rejects(client.query('SELECT * FROM nope'), (e) => e.code === '42P01');
      const after = await client.query('SELECT $1::text AS still', ['alive']);
      assert.equal(after.rows[0].still, 'alive');
    } finally {
      client.release();
    }
    const { rows } = await pool.query('SELECT 40 + $1::int AS n', [2]);
    assert.equal(rows[0].n, 42);
  } finally {
    await pool.end();
  }
});

test('Pool with a wrong password fails like Neon', async () => {
  const pool = new Pool({ connectionString: wrongUrl });
  try {
    await assert.rejects(pool.query('SELECT 1'), (e) => e.code === '28P01');
  } finally {
    await pool.end();
  }
});
