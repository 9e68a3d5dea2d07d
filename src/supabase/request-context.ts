import { type Kysely, sql, type Transaction } from 'kysely'

import { QueryError } from '../connection/query-error.js'
import { SQLSTATE } from '../connection/sql-state.js'
import { REQUEST_PATH_SCHEMAS } from '../connection/request-path-schemas.js'
import type { DB } from '../types/database.js'
import { assertUserId } from './user-id.js'

/**
 * The settings through which PostgREST before v9 passed each claim (request.jwt.claim.<name>),
 * and the whole JWT (request.jwt.claim), still read first by Supabase's auth.uid(), auth.role(),
 * auth.email() and auth.jwt(): a session-level value left on a pooled connection would win over
 * request.jwt.claims.
 */
const LEGACY_CLAIMS = [
  'sub',
  'role',
  'email',
  'aud',
  'exp',
  'iat',
  'iss',
  'phone',
  'session_id',
  'aal',
  'amr',
  'is_anonymous',
  'app_metadata',
  'user_metadata',
]

/**
 * Who a request comes from, as PostgREST sees it: the role it switches to, and the JWT's subject
 * (`auth.uid()`) when someone is signed in. Any other role name is accepted too (a role of the
 * app's own that is a member of service_role, say).
 */
export type Requester =
  | { role: 'anon' }
  | { role: 'authenticated'; sub: string }
  | { role: 'service_role' }
  | { role: string; sub?: string }

/**
 * Runs `query` the way PostgREST runs a request: in a transaction, with `request.jwt.claims` set
 * (so `auth.uid()`, `auth.role()` and `auth.jwt()` answer for the requester) and `SET LOCAL ROLE`
 * to the requester's role, so that grants and row level security apply for real. The transaction
 * commits when `query` resolves and rolls back when it throws; the role and the claims end with
 * it, so the connection goes back to the pool as it came. Both are transaction-scoped, which also
 * makes this safe through a transaction-mode pooler.
 *
 * The database user of `db` must be allowed to switch to the role: a superuser can; on Supabase,
 * `postgres` is a member of anon, authenticated and service_role. Anyone else gets an error
 * saying which GRANT is missing.
 *
 * @example
 * ```ts
 * const ownRows = await asRequester(db, { role: 'authenticated', sub: userId }, (trx) =>
 *   trx.selectFrom('x402_user_openrouter_integrations').selectAll().execute(),
 * )
 * ```
 */
export async function asRequester<T>(
  db: Kysely<DB>,
  requester: Requester,
  query: (trx: Transaction<DB>) => Promise<T>,
): Promise<T> {
  if (db.isTransaction) {
    // SET LOCAL would outlive this call and leak the role into the rest of the caller's transaction.
    throw new Error(
      `Cannot run as ${requester.role} inside a transaction that is already open: ` +
        'pass the Kysely instance itself, and put the queries of the request into the callback.',
    )
  }
  // auth.uid() casts the subject to uuid; anything else is refused before it can be echoed.
  if ('sub' in requester && requester.sub !== undefined) assertUserId(requester.sub)
  return db.transaction().execute(async (trx) => {
    await enterRequest(trx, requester)
    return query(trx)
  })
}

/**
 * What PostgREST does to turn an open transaction into `requester`'s request, in one statement
 * as PostgREST sends it: the search_path (`public, extensions`, then `pg_temp`), `request.jwt.claims` and the role (`SET
 * LOCAL ROLE`), all transaction-local. For code that must prepare the transaction as the database user first and
 * then act as the requester, such as the access matrix; anything else wants {@link asRequester},
 * which opens and ends the transaction too. `extraClaims` adds claims to the JWT's (email,
 * app_metadata, …), as Supabase Auth's tokens carry them; the requester's role and subject always
 * win. `alsoSet` adds transaction-local settings of the caller's own to the same statement.
 *
 * @example
 * ```ts
 * await db.transaction().execute(async (trx) => {
 *   await enterRequest(trx, { role: 'anon' })
 *   return trx.selectFrom('x402_openrouter_models').selectAll().execute()
 * })
 * ```
 */
export async function enterRequest(
  trx: Transaction<any>,
  requester: Requester,
  extraClaims: Record<string, unknown> = {},
  alsoSet: Record<string, string> = {},
): Promise<void> {
  if (requester.role === 'none') {
    // PostgreSQL takes the name for RESET ROLE (in SET ROLE and set_config alike), and no role
    // can be called so: the request would run as the database user, past every policy.
    throw new Error(
      'Cannot switch to role "none": PostgreSQL reads "none" as the database user itself, not as a role, so the request would ' +
        'run with all its privileges. Give the API role of the request: anon, authenticated or service_role.',
    )
  }
  const claims = JSON.stringify({ aud: requester.role, ...extraClaims, ...requester })
  // The legacy per-claim settings are emptied for the transaction, in the same statement: a
  // session-level request.jwt.claim.sub left on a pooled connection would win over the claims.
  // set_config('role', …, true) is SET LOCAL ROLE (same setting, same membership check); it comes
  // last, so that everything before it is set as the database user.
  // PostgREST's search_path for a request on Supabase: the exposed schema, then extensions (a
  // function that calls an extension's unqualified works as it does there), and pg_temp last, so
  // that a temporary table left on a pooled connection hides none. Not the session's: its
  // "$user" would name a schema called after the requester's role (service_role), which a login
  // that once had CREATE on the database could have made (rev-f1 F1).
  const settings = [
    sql`set_config('search_path', ${`${REQUEST_PATH_SCHEMAS.join(', ')}, pg_temp`}, true)`,
    sql`set_config('request.jwt.claims', ${claims}, true)`,
    sql`set_config('request.jwt.claim', '', true)`,
    ...LEGACY_CLAIMS.map((claim) => sql`set_config(${`request.jwt.claim.${claim}`}, '', true)`),
    ...Object.entries(alsoSet).map(([name, value]) => sql`set_config(${name}, ${value}, true)`),
  ]
  try {
    await sql`SELECT ${sql.join(settings)}, set_config('role', ${requester.role}, true)`.execute(
      trx,
    )
  } catch (error) {
    throw roleError(error, requester.role)
  }
}

/**
 * Runs `query` as the signed-in user `userId` (role authenticated, `auth.uid()` = `userId`): only
 * what row level security lets that user see and change.
 *
 * @example
 * ```ts
 * await asUser(db, userId, (trx) => setOpenRouterKeyEnabled(trx, userId, false))
 * ```
 */
export function asUser<T>(
  db: Kysely<DB>,
  userId: string,
  query: (trx: Transaction<DB>) => Promise<T>,
): Promise<T> {
  return asRequester(db, { role: 'authenticated', sub: userId }, query)
}

/**
 * Runs `query` as the backend does, as service_role: every row, through the "Service role full
 * access" policies (and BYPASSRLS on Supabase).
 *
 * @example
 * ```ts
 * const key = await asService(db, (trx) => readOpenRouterKeyForExecution(trx, { userId, cipher }))
 * ```
 */
export function asService<T>(
  db: Kysely<DB>,
  query: (trx: Transaction<DB>) => Promise<T>,
): Promise<T> {
  return asRequester(db, { role: 'service_role' }, query)
}

/** A refused switch to `role`, said with what to grant; any other error as it came. */
function roleError(error: unknown, role: string): unknown {
  if (
    error instanceof QueryError &&
    [
      SQLSTATE.insufficientPrivilege,
      SQLSTATE.invalidParameterValue,
      SQLSTATE.undefinedObject,
    ].includes(error.code as never)
  ) {
    const reason = error.cause instanceof Error ? error.cause.message : error.message
    return new Error(
      `Cannot switch to role "${role}": ${reason}. The role must exist (Supabase has anon, authenticated and ` +
        'service_role; elsewhere migrate:latest creates them), and the database user must be a superuser or a member of it: ' +
        `GRANT ${JSON.stringify(role)} TO <the user of DATABASE_URL>, as Supabase grants its API roles to postgres.`,
      { cause: error },
    )
  }
  return error
}
