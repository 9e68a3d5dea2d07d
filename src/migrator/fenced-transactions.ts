import {
  ConnectionBuilder,
  ControlledTransactionBuilder,
  Kysely,
  type Transaction,
  TransactionBuilder,
} from 'kysely'

/**
 * What runs first in each transaction that {@link withFencedTransactions} opens, on it: the
 * lesser-trigger check with its lock, in the runner.
 */
export type TransactionFence = (trx: Kysely<any>) => Promise<void>

/**
 * `db`, except that every transaction opened through it runs `fence` first, in that transaction,
 * before the code that asked for it: `db.transaction()…execute(fn)` runs `fence(trx)` then
 * `fn(trx)`, and `db.startTransaction()…execute()` hands over its transaction once `fence` ran
 * there (it is rolled back where `fence` throws). What `db.withPlugin()`, `withSchema()`,
 * `withoutPlugins()`, `withTables()` and `connection()` hand out is fenced the same way. For a
 * migration that runs outside a transaction (`config = { transaction: false }`) and opens its own:
 * the runner fences those as it fences its own. Statements sent outside any transaction are not
 * fenced (each commits by itself). Public Kysely API only: each call goes to the instance itself.
 *
 * @example
 * ```ts
 * const fenced = withFencedTransactions(db, async (trx) => {
 *   await sql.raw(lesserTriggersSql({ lock: true })).execute(trx)
 * })
 * await fenced.transaction().execute(async (trx) => {
 *   await sql`DELETE FROM user_openrouter_integrations`.execute(trx) // after the check
 * })
 * ```
 */
export function withFencedTransactions<DB>(db: Kysely<DB>, fence: TransactionFence): Kysely<DB> {
  return fenced(db, fence)
}

function fenced<T>(value: T, fence: TransactionFence): T {
  // A transaction opens no other (Kysely refuses): it and its savepoints are inside the fence.
  if (value instanceof Kysely && !value.isTransaction) return intercept(value, fence, {})
  if (value instanceof TransactionBuilder) {
    return intercept(value, fence, {
      execute:
        (builder: TransactionBuilder<any>) => (fn: (trx: Transaction<any>) => Promise<unknown>) =>
          builder.execute(async (trx) => {
            await fence(trx)
            return fn(trx)
          }),
    })
  }
  if (value instanceof ControlledTransactionBuilder) {
    return intercept(value, fence, {
      execute: (builder: ControlledTransactionBuilder<any>) => async () => {
        const trx = await builder.execute()
        try {
          await fence(trx)
        } catch (error) {
          await trx.rollback().execute()
          throw error
        }
        return trx
      },
    })
  }
  if (value instanceof ConnectionBuilder) {
    return intercept(value, fence, {
      execute:
        (builder: ConnectionBuilder<any>) =>
        (fn: (db: Kysely<any>) => Promise<unknown>, ...rest: unknown[]) =>
          (builder.execute as (...args: unknown[]) => Promise<unknown>)(
            (db: Kysely<any>) => fn(fenced(db, fence)),
            ...rest,
          ),
    })
  }
  return value
}

/**
 * A proxy of `target` whose methods run on `target` itself (Kysely keeps its state in private
 * fields, which a proxy as `this` cannot read), with `overrides` in place of some, and whatever
 * the others return fenced in turn (see {@link fenced}).
 */
function intercept<T extends object>(
  target: T,
  fence: TransactionFence,
  overrides: Record<string, (target: any) => (...args: any[]) => unknown>,
): T {
  return new Proxy(target, {
    get(object, property) {
      const value: unknown = Reflect.get(object, property, object)
      if (typeof property === 'string' && Object.hasOwn(overrides, property))
        return overrides[property]!(object)
      if (typeof value !== 'function') return value
      return (...args: unknown[]) => fenced(value.apply(object, args), fence)
    },
  })
}
