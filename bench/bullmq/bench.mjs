// The peer of bench/deadline.sh: the same timer workload on BullMQ delayed jobs, against the
// same Redis (REDIS_PORT on 127.0.0.1). One job per timer, as BullMQ's users arm timers.
//
//   node bench.mjs arm N
//       adds N delayed jobs (due in an hour) with addBulk, 1,000 a call, 8 calls in flight.
//       Prints "armed=N ms=T".
//   node bench.mjs fire N FIRST_MS SPREAD_MS
//       adds N delayed jobs due from now + FIRST_MS, evenly over SPREAD_MS, then one Worker
//       (concurrency 256, as casewire's claim batch) processes them; each records the time it
//       ran minus its due time. Prints "fired=N early=E p50_ms=.. p99_ms=.. max_ms=..".
//       Exits 1 if not every job ran within SPREAD_MS + 60 s of the first due time.
import { Queue, Worker } from 'bullmq';

const connection = { host: '127.0.0.1', port: Number(process.env.REDIS_PORT), maxRetriesPerRequest: null };
const queueName = 'casewire-bench';
const CHUNK = 1000;
const IN_FLIGHT = 8;

async function addAll(queue, n, dueOf) {
  let next = 0;
  async function lane() {
    while (next < n) {
      const from = next;
      next = Math.min(n, next + CHUNK);
      const now = Date.now();
      const jobs = [];
      for (let i = from; i < next; i++) {
        const due = dueOf(i);
        jobs.push({
          name: 'timer',
          data: { due, case: `case-${i}` },
          opts: { timestamp: now, delay: Math.max(0, due - now), removeOnComplete: true, removeOnFail: true },
        });
      }
      await queue.addBulk(jobs);
    }
  }
  await Promise.all(Array.from({ length: IN_FLIGHT }, lane));
}

async function arm(n) {
  const queue = new Queue(queueName, { connection });
  const t0 = performance.now();
  const due = Date.now() + 3600 * 1000;
  await addAll(queue, n, () => due);
  console.log(`armed=${n} ms=${Math.round(performance.now() - t0)}`);
  await queue.close();
}

async function fire(n, firstMs, spreadMs) {
  const queue = new Queue(queueName, { connection });
  const first = Date.now() + firstMs;
  const dueOf = (i) => first + (n > 1 ? Math.floor((spreadMs * i) / (n - 1)) : 0);
  const late = [];
  let early = 0;
  let resolveAll;
  const allDone = new Promise((r) => (resolveAll = r));
  const worker = new Worker(
    queueName,
    async (job) => {
      const d = Date.now() - job.data.due;
      if (d < 0) early++;
      late.push(d);
      if (late.length === n) resolveAll();
    },
    { connection, concurrency: 256 },
  );
  const t0 = performance.now();
  await addAll(queue, n, dueOf);
  const armMs = Math.round(performance.now() - t0);
  const limit = first + spreadMs + 60000 - Date.now();
  const timedOut = await Promise.race([
    allDone.then(() => false),
    new Promise((r) => setTimeout(() => r(true), Math.max(limit, 1000))),
  ]);
  await worker.close();
  await queue.close();
  late.sort((a, b) => a - b);
  const at = (q) => (late.length ? late[Math.floor((late.length - 1) * q)] : -1);
  console.log(
    `fired=${late.length} early=${early} p50_ms=${at(0.5)} p99_ms=${at(0.99)} max_ms=${at(1)} arm_ms=${armMs}`,
  );
  process.exit(timedOut ? 1 : 0);
}

const [mode, ...args] = process.argv.slice(2);
if (mode === 'arm' && args.length === 1) await arm(Number(args[0]));
else if (mode === 'fire' && args.length === 3) await fire(Number(args[0]), Number(args[1]), Number(args[2]));
else {
  console.error('usage: node bench.mjs arm N | fire N FIRST_MS SPREAD_MS');
  process.exit(2);
}
