import { type Kysely, sql } from 'kysely'
import { describe, expect, it } from 'vitest'

import { planRepair } from '../src/tooling.js'
import { withLesserRole } from './support/lesser-role.js'
import { ALL_MIGRATIONS } from './support/migration-names.js'
import { testTargets, useTestDatabase } from './support/test-database.js'

// Review R1: the repair plan counts the stored rows that a CHECK the database lacks would reject
// by evaluating the CHECK over the operator's table. It refused a table of a lesser role, but not
// a column whose type a lesser login owns, or reaches through a domain of a trusted role: the
// type's owner may give it an implicit cast to text with a function of its own, and
// `(network = ANY (ARRAY[…])) IS FALSE` then ran that function as the operator. The plan must
// refuse before it counts, naming the column, the type and its owner (the rule of the lesser-code
// check of the writes: COLUMN_TYPE_CODE_SQL).

const LATEST = ALL_MIGRATIONS.at(-1)!

// The plan reads in a READ ONLY transaction, which stops an ALTER ROLE but not what a function
// may send out: the planted code says that it ran, and as whom.
const PLANTED = `RAISE EXCEPTION 'the planted code ran as %', current_user;`

const NETWORKS = `'solana', 'base', 'ethereum', 'polygon', 'base-sepolia', 'ethereum-sepolia', 'solana-devnet', 'not-a-network'`

/** What `role` sets up as itself. */
async function asRole(db: Kysely<any>, role: string, statements: string[]): Promise<void> {
  await db.transaction().execute(async (trx) => {
    await sql.raw(`SET LOCAL ROLE ${role}`).execute(trx)
    for (const statement of statements) await sql.raw(statement).execute(trx)
  })
}

/**
 * x402_resources without its network CHECK, its network column of `type` (made by `make`, which
 * is given the lesser login's enum `<role>.net` of the networks, with an implicit cast to text
 * that runs the planted code), holding a row that the CHECK rejects.
 */
async function networkOfType(
  db: Kysely<any>,
  role: string,
  make: (net: string) => { type: string; statements: readonly string[] },
): Promise<void> {
  await sql.raw(`CREATE SCHEMA ${role} AUTHORIZATION ${role}`).execute(db)
  await asRole(db, role, [
    `CREATE TYPE ${role}.net AS ENUM (${NETWORKS})`,
    `CREATE FUNCTION ${role}.f(v ${role}.net) RETURNS text LANGUAGE plpgsql AS $f$ BEGIN ${PLANTED} END $f$`,
    `CREATE CAST (${role}.net AS text) WITH FUNCTION ${role}.f(${role}.net) AS IMPLICIT`,
  ])
  const { type, statements } = make(`${role}.net`)
  // One statement at a time: PGlite prepares each.
  for (const statement of [
    ...statements,
    'ALTER TABLE public.x402_resources DROP CONSTRAINT x402_resources_network_check',
    `ALTER TABLE public.x402_resources ALTER COLUMN network TYPE ${type} USING network::text::${type}`,
    `INSERT INTO public.x402_resources (name, resource_url, normalized_url, network, pay_to)
       VALUES ('r', 'https://z.example.test', 'z.example.test', 'not-a-network', '0x1')`,
  ])
    await sql.raw(statement).execute(db)
}

describe.each(testTargets)(
  'the repair plan and the types of the columns it counts, on %s',
  (target) => {
    describe.each([
      [
        'the lesser login’s enum itself',
        (net: string) => ({ type: net, statements: [] }),
        (role: string) =>
          `column network of public.x402_resources is of type ${role}.net, owned by ${role}`,
      ],
      [
        'a domain of the operator over it',
        (net: string) => ({
          type: 'public.zz_net',
          statements: [`CREATE DOMAIN public.zz_net AS ${net}`],
        }),
        (role: string) =>
          `column network of public.x402_resources is of type public.zz_net, a domain over ${role}.net, owned by ${role}`,
      ],
      [
        // Review revj J7: the walk stopped at depth 16, silently.
        '17 domains of the operator, each over the next, the last over it',
        (net: string) => ({
          type: 'public.zz_d1',
          statements: [
            `CREATE DOMAIN public.zz_d17 AS ${net}`,
            ...Array.from(
              { length: 16 },
              (_, k) => `CREATE DOMAIN public.zz_d${16 - k} AS public.zz_d${17 - k}`,
            ),
          ],
        }),
        (role: string) =>
          `column network of public.x402_resources is of type public.zz_d1, which reaches public.zz_d17, a domain over ${role}.net, owned by ${role}`,
      ],
      [
        // Review revj J7: a cast of the operator's own type, through the lesser login's function.
        'the operator’s enum, whose implicit cast to text is the lesser login’s function',
        (net: string) => {
          const role = net.split('.')[0]
          return {
            type: 'public.zz_net',
            statements: [
              `CREATE TYPE public.zz_net AS ENUM (${NETWORKS})`,
              `CREATE FUNCTION public.zz_f(v public.zz_net) RETURNS text LANGUAGE plpgsql AS $f$ BEGIN ${PLANTED} END $f$`,
              `ALTER FUNCTION public.zz_f(public.zz_net) OWNER TO ${role}`,
              `CREATE CAST (public.zz_net AS text) WITH FUNCTION public.zz_f(public.zz_net) AS IMPLICIT`,
            ],
          }
        },
        // Refused before the plan reads the columns: the check that opens every catalog read
        // refuses a cast whose function a lesser login owns, wherever it is (review of rev13, R2).
        (role: string) =>
          `cast (public.zz_net AS text) calls public.zz_f(public.zz_net), owned by ${role}`,
      ],
    ] as const)(
      'a network column of %s, with an implicit cast of its owner',
      (_case, make, refusal) => {
        const database = useTestDatabase(target, 'latest')

        it('refuses before it counts (42501), naming the column, the way and the owner, and runs no cast', async () => {
          const { db } = database
          await withLesserRole(
            db,
            'x402_test_plantype',
            async (role) => {
              await networkOfType(db, role, make)
              const error = await planRepair(db, LATEST, { decisions: [] }).catch(
                (caught: unknown) => caught,
              )
              expect(String(error)).not.toMatch(/planted code ran/)
              expect((error as { code?: string }).code).toBe('42501')
              expect((error as Error).message).toContain(refusal(role))
              expect((error as Error).message).toContain('Nothing was changed')
            },
            { login: true },
          )
        })
      },
    )
  },
)
