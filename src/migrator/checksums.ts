import { createHash } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

import { type Kysely, sql } from 'kysely'

import { migrations } from '../migrations/index.js'
import { MIGRATION_HISTORY_TABLE, MigrationHistoryError } from './history.js'
import { bookkeepingTablesProblemSql, MIGRATION_CHECKSUM_TABLE } from './history-tables.js'

export { MIGRATION_CHECKSUM_TABLE } from './history-tables.js'

/**
 * How a checksum came to be recorded:
 * - `applied`: by the run that applied the migration, in the transaction that writes its
 *   history row (a down deletes both in one transaction too), so that no run, killed or
 *   stopped by a lost lock, leaves a migration recorded without the checksum of the text that
 *   ran (review revr R1);
 * - `baseline`: by `migrate:baseline`, after the live schema was found equal to what the
 *   migrations produce;
 * - `backfill`: later, for a migration applied before checksums existed. It is the file as it
 *   was when the checksum was recorded, so it cannot show an edit made before that. Only two
 *   writers record it: {@link ensureChecksumTable}, where it creates the table on a database
 *   whose history predates checksums, and `migrate:baseline`, after it compared the live schema.
 *   Where the table exists, a run never fills in a missing checksum: `migrate:check` names the
 *   migration instead (its status `missing`).
 */
export type ChecksumOrigin = 'applied' | 'baseline' | 'backfill'

/** A checksum as recorded in x402_migrations.migration_checksum. */
export interface RecordedChecksum {
  name: string
  sha256: string
  origin: ChecksumOrigin
  recordedAt: Date
}

/**
 * The earlier texts of migrations that were corrected in place before any release, by sha256,
 * each with what the correction changed. A database that recorded one of them applied that
 * earlier text: `migrate:check` says so by name instead of reporting the file as edited.
 */
export const EARLIER_TEXTS: Readonly<Record<string, Readonly<Record<string, string>>>> = {
  '005_add_openrouter_integration': {
    '7906397013a222e6ccc79006370c2b6ca870a2f38cad2117d04e275e632739d5':
      'its down now rolls back where a trigger or rule deleted or changed rows it did not report, ' +
      'and it describes its own resumable down',
    a3df4886315bbd36355c2ef5dcd2ecab869c03423d9a4e834fdce6c9aeb1c522:
      'its down now also rolls back where a trigger truncated or rewrote a table, and where anything ' +
      'after its check deleted or changed rows in the same transaction',
    fb517162047e251a1af208357430e7aaf589497d18557ddf152115f990fd238e:
      'its down now also checks its VALIDATE step and tables or columns dropped unreported, stops ' +
      'where rows were deleted while it dropped its index, and watches the backups in x402_backup',
    fc3eec5eb4b7def9758d44e4d37ea7e526385baa66020fa1500a8a1607510d90:
      'its down now also counts what deferred triggers do, firing them before its checks',
    e114a7e2eee8acd01025296ac2afb763c7e0fbf3b345d618c42eec7c37853c89:
      'its down now also watches the tables of x402_migrations, where a trigger could delete ' +
      "the module's records unreported",
    b489895fca6ccba319ea5c5d65ec1114c83ebe566f7daa4a5ddf5c8291e19370:
      'its down now also rolls back where a backup in x402_backup does not hold the rows moved ' +
      'into it (an event trigger emptied it or swallowed its inserts), drops its index in its last ' +
      'transaction, and tells the runner from the schema that its rollback began (downBegun)',
    '91c4cb41c3d7c69d01d8704637753cd2b3612107814ac203b827055726363098':
      'its down now drops its index in its last transaction, where what an event trigger changes ' +
      'is checked and rolled back, instead of concurrently outside one, and rolls back where a ' +
      'backup in x402_backup does not hold the rows moved into it',
    '19900ea85f0b1b08ea97384cc9577439dc968107b24523c02daa44e2a5d19297':
      'its down now also rolls back where a backup in x402_backup does not hold the rows moved ' +
      'into it (an event trigger emptied it or swallowed its inserts)',
    '943fbc564806cdd5bb8f2787b61cc7a4dbf75b86efdc0b36fc9cf74d4e9ba8d5':
      'its down now also watches tables in schemas whose names begin with "pg" but are not ' +
      "PostgreSQL's own, such as pgmq, compares its backups with the rows moved into them value " +
      'for value, refuses where row level security hides rows from the role that runs it, and ' +
      'rolls back where a trigger removed large objects',
    cbcc4338f093a2bb8323fc4fddb07dcd94210408b08032dfa384c4df3d641fb3:
      'its down now also rolls back where a trigger of the rows it moves to x402_backup removes ' +
      'large objects',
    '8c8a47e73f8e64d2dfa68a6f7fb5950556a9367b896fb9e139bb7db71f90fe48':
      'its down now also rolls back where a large object was emptied or overwritten (lo_truncate, ' +
      'lo_put), and where an attribute of a composite type that a table holding rows uses was ' +
      'dropped or changed type (ALTER TYPE … DROP ATTRIBUTE … CASCADE)',
    eacfb63016164f7cf78e5c6315fd94e8451117697089b7f929a308c9dc02d096:
      'its down now also rolls back where a label of an enum type that a table holding rows uses ' +
      'was renamed or is gone (ALTER TYPE … RENAME VALUE)',
    cf4c49d4cc248887e017c98b83e835643fd6fc022c56172afe25739c4f43215f:
      'its down also follows the composite and enum types that a table holding rows keeps in a ' +
      'range or multirange',
    '6173789d59350fa30624c99028777627e1b8d8caca1227ee98e17df452916b4b':
      'its down now compares each backup in x402_backup with the count and digest of the rows ' +
      'moved into it last in every transaction, after the statements whose event triggers could ' +
      "drop or empty it, its earlier transactions' backups included, and notes which tables hold " +
      "rows before its last step's check too, where an event trigger of a backup could drop one",
    '4db386f536f9faa90069dec9d39612b7a0afdfe8004d7d2beecf8c6de3eb3829':
      'its down now also rolls back where a backup in x402_backup is no longer a permanent ' +
      'ordinary table with no rule: made UNLOGGED, turned into a view, attached as a partition, ' +
      'or given a rule by an event trigger of its CREATE TABLE AS',
    ee62badd1f8632e04c028cd00550df35dd9ed78fe9bfca9289ae4e12ff5d7f41:
      'its downBegun looked only for the rollback CHECK, so that a rollback whose first step had ' +
      'committed was taken for none once that CHECK was dropped by hand; it now also reads the ' +
      'resource types of before 005 that the first step puts back',
    a315529dfe29d45a6fa07d205f9c3ab056d28c475245f669b83b6541491c742a:
      'its downBegun read the resource types, so that a database at 005 whose type CHECK was written ' +
      'another way, or dropped, was taken for a half-done rollback where no rollback had run; ' +
      'downBegun reads the rollback CHECK again, and downMayHaveBegun, which only weighs a mark, ' +
      'reads the resource types and the backups of 005 too',
    e4a134b947b5e3ddf42bdc982091c01687328ca873c21b7b270816bcdeecc04c:
      'its down moved the keys and instant resources in its first step, then failed in a later one ' +
      'where rows of a resource type outside the five it puts back, or an object it did not make ' +
      'that depends on what it drops (a view, a foreign key), were there; it now refuses them ' +
      'first. Its downMayHaveBegun counted every backup of 005 in x402_backup, those of an ' +
      'earlier rollback that finished too, so that a stale mark stood after 005 was applied ' +
      "again; it now counts the backups stamped at or after the mark's time",
    '5fa16a1c166a5c13032d99b3018062a8cd0cc5c393f65195c390ba93922c28fa':
      'its down moved the keys and instant resources in its first step, then failed in a later one ' +
      'where rows of a resource type outside the five it puts back, or an object it did not make ' +
      'that depends on what it drops (a view, a foreign key), were there; it now refuses them first',
    '67d84cbf4872216297ed270870ec1d8fd80b892705524128077a5c97bd1719f2':
      'its downMayHaveBegun counted every backup of 005 in x402_backup, those of an earlier ' +
      'rollback that finished too, so that a stale mark stood after 005 was applied again; it now ' +
      "counts the backups stamped at or after the mark's time",
    '3e955ef681d0b820be2366728531768272e4ebb8b10d32d9ce53111c251d5f97':
      'its down let through a table holding x402_resources row values, extension members among ' +
      'what it drops, a hand-made type CHECK with extra values, and a row of an extra type ' +
      'committed during its first step, each failing or losing something after the keys moved',
    a930798077fc6f2c2f6c482b8df382e6dc635af8bd93618ba20b45385c0d7fe1:
      'its down committed its first step where a trigger put values back into the columns it ' +
      'empties, and then failed in every later step; it now rolls the first step back, naming ' +
      'the triggers',
    '55370b128956b953d4b5799a076524ff15d1cf2771da43e064b3939e239eba35':
      'its down committed its first steps where x402_resources inherits from, or is a partition ' +
      'of, another table, and its last step then failed for good; it now refuses first, naming it',
    edcabbf3efd2cfa4f692427fb60570a17dbc0770701bc91b014c01fcb9e1894f:
      'its down committed its first steps where tables inherit from x402_resources (a view on a ' +
      "child's column) or x402_resources is a typed table, and its last step then failed for " +
      'good; it now refuses first, naming them',
    fc4a42bda92710e9369b0d730ba6b83b9c903eca0117395c6dc964b2fc1db005:
      'its down now also rolls back where foreign data wrappers, servers, tables or user mappings ' +
      'were changed while it ran (a trigger that made a read-only foreign table writable, or made ' +
      'one, and deleted rows on another server through it)',
    a28b6583f663e65460c2b2a6ad9b9ab660e7174f3cdce9528b0b369d27525fa9:
      'its down read every table to note which hold rows, and planning such a read runs the ' +
      "functions an index's expressions or predicate call with constant arguments, with the " +
      "session's power; it now counts a table whose index calls a function not built in as " +
      'holding rows, unread',
  },
  '006_rename_to_production_names': {
    '33296b14bba4cc54b7868e875e6e62242bed27fdd7237af91a60a94d07021c00':
      'it locked x402_resources against writes for its whole transaction; it now runs in a ' +
      'transaction of its own and takes no lock there that a write waits for',
    '61305c0db95669f045c8f5025bfe1402117a775c3760af533eabe9e5fdb9d93c':
      'its comment now says which waits and deadlocks with app transactions remain, and that the ' +
      'runner tries it again after a deadlock',
    c858325bba584263b182d7fab58be73f1c8be48d3529f39cc3c26c7cbbf676e8:
      'its up overwrote the values of pricing columns that the catalog had before 006 with the ' +
      'pricing object (NULL for a key it lacks); it now keeps them, and refuses where they differ',
    f42fa30711e0324a77c055ab538406fcb8b2d8b2016cf97b79ed842f216b4117:
      'its up refused a pricing column of another type than text with a bare SQL error, and ' +
      'showed conflicting values unquoted; it now names the column and its type, and quotes them',
    c8a291e5d8c3880dca04ac65ccc14e024a2f7797451afb1c493ff72599675e35:
      "its up compared a pricing column with the pricing object under the column's collation (one " +
      'that ignores case called two values equal), and failed with a bare SQL error on a generated ' +
      'pricing column; it now compares the characters and names a generated column',
    '5143d44e1e12a31733c80bc78af3a85b37487eda0c58ce1f12ac71a138c0e504':
      'its down rewrote every record of an accepted difference whose definition named a table of ' +
      'public, changed or not, and did not declare its own writes, so that the check of what a ' +
      'down changed refused every rollback of 006 on an adopted database; it now rewrites only ' +
      'the records of the tables it renames, and declares them',
    '187baf7594cea930260369bcd7594a6f98cb7e5ed58f72c2d94cc170f534a374':
      "it renamed the tables under functions whose bodies name them as text (production's " +
      'soft_delete_user_tx), which then failed; it now refuses, naming each function',
    '732189beeff62d2c9fe8f82003b97911d150ea05c28665758ed4cebe2284586c':
      "its refusal of function bodies that name the renamed tables also matched another schema's " +
      'table of the same name; it now matches the name unqualified or in public, quoted or not',
    b25a09c2b676db29ffb2995cc4a346bc9e2d5bec0cc15a2e4681c193cf40656f:
      'its refusal of function bodies that name the renamed tables matched a schema whose name ends ' +
      'in "public" and a quoted name in capitals, and missed a space before the dot; it now reads ' +
      'them as PostgreSQL does',
    '201399a20c81fe85c0d8179a1c3985cdb43fdd5581d769fe6d6474e594d59757':
      'its refusal of function bodies that name the renamed tables missed a name against the ' +
      'dollar quote of dynamic SQL ($q$DELETE FROM ai_models$q$)',
  },
  '007_openrouter_policies_per_supabase_advice': {
    '6a170803608de842a65c9bdac51d4b58d358657cdc50ee143398760e4bb495c5':
      'its down now refuses where the user policy was changed or dropped since 007, instead of ' +
      'widening it back to FOR ALL TO public, and keeps a search_path set since',
    '9d063bb0cd464ddb57f3650af74da6d57fb0c2b02fa3c469cd64ca6914057ddc':
      'its up and down now keep a comment on the user policy; they dropped it with the policy',
  },
  '008_close_supabase_advisor_findings': {
    '04ffbc1594795986db63b42d82260eba5dc43936706ccaa929acb57b97e3715d':
      'its down ran policy text stored in x402_migrations.prior_state_008; it now keeps a record ' +
      'it checks and never runs, and leaves a Claude policy of another shape or name alone',
    '34922deba8f8a38916d81e3d1f7777c6c4ec9aae639fdfd34abeda6eacd8274a':
      'its down now refuses a record of more than one row, or without its primary key and checks, ' +
      'instead of reading whichever row came first',
    '4194e7f0518abeb60379b4e1b3af26cde983b50ce82e694d81570da72935b327':
      'its down read the record with to_jsonb, which runs the casts of any column added to it; it ' +
      'now reads its named columns, and refuses a record with other columns or an owner who ' +
      'cannot act as the role running it',
    c3f6023c32b1eb4d5651012f1118d338d7c0d72f9e4d11ba4e341e966cc4b5e9:
      'its comment said that an edited record could only make the down refuse; it now says what ' +
      'the down trusts the record for',
    b6ad4e2bd0ba4daa5f9ef2757f8aaea7ea5e42901f4527c0f3c7fca1926ac624:
      'its down refused to switch row level security off on a table with policies 008 did not ' +
      'make, also where they were there, with RLS off, before 008; it now restores RLS as recorded',
  },
}

/**
 * What the correction of `name` changed, when `sha256` is an earlier text of it.
 *
 * @example
 * ```ts
 * earlierText('008_close_supabase_advisor_findings', recorded.sha256) // 'its down ran …' or undefined
 * ```
 */
export function earlierText(name: string, sha256: string): string | undefined {
  return EARLIER_TEXTS[name]?.[sha256]
}

/**
 * The checksum verdict on one applied migration:
 * - `ok`: the file is as it was when it was applied (or adopted);
 * - `backfilled`: the file matches a checksum recorded after the migration was applied, when
 *   checksums did not exist yet; an edit made before that cannot be seen;
 * - `unrecorded`: no checksum yet, on a database that has no checksum table (migrated by a version
 *   of the module without checksums); the next run that applies or reverts a migration records
 *   it as `backfill`, and so does `migrate:baseline -- <the newest applied migration>` at once;
 * - `missing`: no checksum, where the database keeps the table: a run writes each checksum with
 *   its history row, so the text that ran is unknown (a run of an earlier version killed or
 *   stopped between the two, or one without the source file). It is drift, named; no run fills
 *   it in. `migrate:baseline -- <the newest applied migration>` records it (`backfill`) once it
 *   has compared the live schema with what the migrations produce;
 * - `corrected`: the database applied an earlier text of the migration, corrected in place
 *   before any release (EARLIER_TEXTS); the schema check still applies;
 * - `edited`: the file differs from the one applied: a released migration was changed;
 * - `unreadable`: the source file cannot be read, so the migration cannot be verified.
 *
 * One rule for `migrate:check` (adoption/drift-check.ts) and for the runner, which refuses to
 * revert a migration whose verdict is one of {@link UNVERIFIED_CHECKSUMS} (review revt F4).
 */
export interface ChecksumVerdict {
  name: string
  status: 'ok' | 'backfilled' | 'unrecorded' | 'missing' | 'corrected' | 'edited' | 'unreadable'
  recorded?: RecordedChecksum
  /** The checksum of the file now, when it could be read. */
  current?: string
  /** Why the file could not be read. */
  problem?: string
}

/**
 * The verdicts that leave a migration unverified: `migrate:check` fails on them, and the runner
 * refuses to run the down of such a migration, since it may not undo the text that ran.
 */
export const UNVERIFIED_CHECKSUMS: readonly ChecksumVerdict['status'][] = [
  'edited',
  'missing',
  'unreadable',
]

/**
 * The verdict on applied migration `name`, from its recorded checksum (if any), whether the
 * database keeps the checksum table, and its source file now.
 *
 * @example
 * ```ts
 * const recorded = await readMigrationChecksums(db)
 * await checksumVerdict(name, recorded.get(name), await checksumTableExists(db)) // { status: 'ok', … }
 * ```
 */
export async function checksumVerdict(
  name: string,
  recorded: RecordedChecksum | undefined,
  checksumsKept: boolean,
  options: MigrationSourceOptions = {},
): Promise<ChecksumVerdict> {
  let current: string
  try {
    current = await migrationChecksum(name, options)
  } catch (error) {
    return { name, status: 'unreadable', recorded, problem: (error as Error).message }
  }
  if (!recorded) return { name, status: checksumsKept ? 'missing' : 'unrecorded', current }
  if (recorded.sha256 !== current) {
    const status = earlierText(name, recorded.sha256) ? 'corrected' : 'edited'
    return { name, status, recorded, current }
  }
  return { name, status: recorded.origin === 'backfill' ? 'backfilled' : 'ok', recorded, current }
}

/** Where the migration sources are read from. */
export interface MigrationSourceOptions {
  /**
   * The folder of the migration files, `<name>.ts` each; `src/migrations` of the package by
   * default. Tests point it at an edited copy.
   */
  sourceDir?: string
}

/**
 * src/migrations from the package root. This file is src/migrator/checksums.ts or, compiled,
 * dist/migrator/checksums.js: two levels below the root either way, so the checksum is of
 * the same TypeScript file whether the module runs from tsx, vitest or dist/.
 */
const DEFAULT_SOURCE_DIR = fileURLToPath(new URL('../../src/migrations/', import.meta.url))

const checksumTable = () => MIGRATION_CHECKSUM_TABLE
const historyTable = () => MIGRATION_HISTORY_TABLE

/**
 * The statements that create the checksum table, as run by the module and as printed by
 * `migrate:sql -- --baseline`. In x402_migrations, not public: Supabase's default privileges
 * would hand a table in public to anon and authenticated.
 */
export function checksumTableStatements(): string[] {
  return [
    `CREATE TABLE IF NOT EXISTS ${checksumTable()} (
  name varchar(255) NOT NULL PRIMARY KEY,
  sha256 char(64) NOT NULL,
  origin text NOT NULL CHECK (origin IN ('applied', 'baseline', 'backfill')),
  recorded_at timestamptz NOT NULL DEFAULT now()
)`,
    `COMMENT ON TABLE ${checksumTable()} IS 'sha256 of src/migrations/<name>.ts (line endings normalised) of each ` +
      `applied migration, so that migrate:check finds a migration file edited after it was applied. Kept by the x402-jobs db module.'`,
  ]
}

/**
 * The path of a migration's source file.
 *
 * @example
 * ```ts
 * migrationSourcePath('005_add_openrouter_integration') // '/app/src/migrations/005_add_openrouter_integration.ts'
 * ```
 */
export function migrationSourcePath(name: string, options: MigrationSourceOptions = {}): string {
  return join(options.sourceDir ?? DEFAULT_SOURCE_DIR, `${name}.ts`)
}

/**
 * The checksum of a migration: sha256 (hex) of its source file, with a byte order mark removed
 * and CRLF line endings read as LF, so that a checkout on Windows gives the same checksum.
 * Throws when the file cannot be read, saying where it was looked for.
 *
 * @example
 * ```ts
 * await migrationChecksum('005_add_openrouter_integration') // 'e3b0c442…'
 * ```
 */
export async function migrationChecksum(
  name: string,
  options: MigrationSourceOptions = {},
): Promise<string> {
  const path = migrationSourcePath(name, options)
  let source: string
  try {
    source = await readFile(path, 'utf8')
  } catch (error) {
    throw new Error(
      `Cannot read the source of migration ${name} at ${path} (${(error as Error).message}), which its checksum is made from. ` +
        'Run the command from a checkout or package that includes src/migrations.',
      { cause: error },
    )
  }
  const normalised = source.replace(/^\uFEFF/, '').replace(/\r\n?/g, '\n')
  return createHash('sha256').update(normalised).digest('hex')
}

/** A migration whose history row the calling transaction wrote or deleted. */
export interface HistoryChange {
  migrationName: string
  direction: 'Up' | 'Down'
}

/** Options of {@link syncMigrationChecksums}. */
export interface SyncChecksumOptions extends MigrationSourceOptions {
  /**
   * The migrations whose history row the calling transaction wrote (`Up`) or deleted (`Down`):
   * each up gets the checksum of its file as `applied`, replacing any left there, and each down
   * loses its checksum, in the same transaction.
   */
  changes?: readonly HistoryChange[]
  /**
   * The checksum of each migration of `changes`, where the caller read it before the migration
   * ran; read now otherwise.
   */
  checksums?: ReadonlyMap<string, string>
}

/**
 * Keeps the checksum table with the migration history (x402_migrations.kysely_migration). The
 * runner calls it in the transaction that writes a migration's history row, before it commits
 * (`changes`), and once before a run's first migration, without: where the history predates
 * checksums, it creates the table and backfills it ({@link ensureChecksumTable}); it removes the
 * checksum of every migration no longer recorded (one a version before this one left). It never
 * fills in the missing checksum of a migration recorded where the table existed: migrate:check
 * names it. A migration of `changes` whose source file is not there (a deployment of dist/
 * alone) is recorded without one, and migrate:check names it too.
 *
 * @example
 * ```ts
 * await db.transaction().execute(async (trx) => {
 *   await migrator(trx).migrateTo(name) // writes the history row
 *   await syncMigrationChecksums(trx, { changes: [{ migrationName: name, direction: 'Up' }] })
 * })
 * ```
 */
export async function syncMigrationChecksums(
  db: Kysely<any>,
  options: SyncChecksumOptions = {},
): Promise<void> {
  const changes = options.changes ?? []
  const { history, checksums } = await existingTables(db)
  if (!history) return
  await createWhereMissing(db, checksums, {
    ...options,
    recordedNow: changes.map(({ migrationName }) => migrationName),
  })
  const reverted = changes
    .filter(({ direction }) => direction === 'Down')
    .map(({ migrationName }) => migrationName)
  const applied = await Promise.all(
    changes
      .filter(({ direction }) => direction === 'Up')
      .map(async ({ migrationName: name }) => ({
        name,
        sha256:
          options.checksums?.get(name) ??
          (await migrationChecksum(name, options).catch(() => undefined)),
      })),
  )
  // Every checksum of a migration not recorded, and any left for one applied now.
  const replaced = [...reverted, ...applied.map(({ name }) => name)]
  await sql`
    DELETE FROM ${sql.raw(checksumTable())} c
    WHERE NOT EXISTS (SELECT FROM ${sql.raw(historyTable())} m WHERE m.name = c.name)
    ${replaced.length > 0 ? sql`OR c.name IN (${sql.join(replaced)})` : sql``}
  `.execute(db)
  await insertChecksums(
    db,
    applied.flatMap(({ name, sha256 }) =>
      sha256 === undefined ? [] : [{ name, sha256, origin: 'applied' as const }],
    ),
  )
}

/**
 * Reads the recorded checksums; an empty map where the table does not exist yet.
 *
 * @example
 * ```ts
 * (await readMigrationChecksums(db)).get('005_add_openrouter_integration')?.origin // 'applied'
 * ```
 */
export async function readMigrationChecksums(
  db: Kysely<any>,
): Promise<Map<string, RecordedChecksum>> {
  if (!(await existingTables(db)).checksums) return new Map()
  const { rows } = await sql<{
    name: string
    sha256: string
    origin: ChecksumOrigin
    recorded_at: Date | string
  }>`
    SELECT name, sha256, origin, recorded_at FROM ${sql.raw(checksumTable())} ORDER BY name
  `.execute(db)
  return new Map(
    rows.map((row) => [
      row.name,
      {
        name: row.name,
        sha256: row.sha256,
        origin: row.origin,
        recordedAt: new Date(row.recorded_at),
      },
    ]),
  )
}

/** Options of {@link ensureChecksumTable}. */
export interface EnsureChecksumTableOptions extends MigrationSourceOptions {
  /** The migrations whose history row the calling transaction wrote: none of them is a backfill. */
  recordedNow?: readonly string[]
}

/**
 * Creates the checksum table if missing; its schema, x402_migrations, must exist (Kysely's
 * Migrator makes it). Where it creates it, the database predates checksums: each migration its
 * history recorded before (all but `recordedNow`) gets the checksum of its file now, as
 * `backfill`. This is the one place a run decides `backfill` (see {@link ChecksumOrigin}).
 */
export async function ensureChecksumTable(
  db: Kysely<any>,
  options: EnsureChecksumTableOptions = {},
): Promise<void> {
  await createWhereMissing(db, (await existingTables(db)).checksums, options)
}

async function createWhereMissing(
  db: Kysely<any>,
  exists: boolean,
  options: EnsureChecksumTableOptions,
): Promise<void> {
  if (exists) return
  await createChecksumTable(db)
  await recordMissing(db, () => 'backfill', options, options.recordedNow)
}

/**
 * Whether the checksum table exists: where it does, every migration recorded since has its
 * checksum, written with its history row, and one that has none is reported by name.
 */
export async function checksumTableExists(db: Kysely<any>): Promise<boolean> {
  return (await existingTables(db)).checksums
}

async function createChecksumTable(db: Kysely<any>): Promise<void> {
  for (const statement of checksumTableStatements()) await sql.raw(statement).execute(db)
}

/**
 * Removes the checksums of migrations no longer applied and records one for each applied
 * migration that has none, with the origin `originOf` gives it, in three queries at most, the
 * first of which checks both tables as {@link syncMigrationChecksums} does. The table must exist.
 * Returns the names it recorded. `migrate:baseline` records them as `backfill` once it has
 * compared the live schema with the migrations: what migrate:check tells to do for a migration
 * recorded without a checksum. A run never calls it.
 */
export async function recordMissingChecksums(
  db: Kysely<any>,
  originOf: (name: string) => ChecksumOrigin,
  options: MigrationSourceOptions = {},
): Promise<string[]> {
  await existingTables(db)
  return recordMissing(db, originOf, options)
}

async function recordMissing(
  db: Kysely<any>,
  originOf: (name: string) => ChecksumOrigin,
  options: MigrationSourceOptions,
  except: readonly string[] = [],
): Promise<string[]> {
  // One round trip: the DELETE's rows are not in the history, so the SELECT's join is unaffected.
  const { rows } = await sql<{ name: string }>`
    WITH removed AS (
      DELETE FROM ${sql.raw(checksumTable())} c
      WHERE NOT EXISTS (SELECT FROM ${sql.raw(historyTable())} m WHERE m.name = c.name)
    )
    SELECT m.name FROM ${sql.raw(historyTable())} m
    WHERE NOT EXISTS (SELECT FROM ${sql.raw(checksumTable())} c WHERE c.name = m.name)
    ORDER BY m.name
  `.execute(db)
  const lacking = rows
    .map((row) => row.name)
    .filter((name) => name in migrations && !except.includes(name))
  const found = await Promise.all(
    lacking.map(async (name) => ({
      name,
      sha256: await migrationChecksum(name, options).catch(() => undefined),
      origin: originOf(name),
    })),
  )
  const readable = found.filter((entry): entry is NewChecksum => entry.sha256 !== undefined)
  await insertChecksums(db, readable)
  return readable.map((entry) => entry.name)
}

/** A checksum to record. */
export interface NewChecksum {
  name: string
  sha256: string
  origin: ChecksumOrigin
}

/** Records the given checksums; a migration that has one already keeps it. */
export async function insertChecksums(
  db: Kysely<any>,
  checksums: readonly NewChecksum[],
): Promise<void> {
  if (checksums.length === 0) return
  await sql`
    INSERT INTO ${sql.raw(checksumTable())} (name, sha256, origin)
    VALUES ${sql.join(checksums.map(({ name, sha256, origin }) => sql`(${name}, ${sha256}, ${origin})`))}
    ON CONFLICT (name) DO NOTHING
  `.execute(db)
}

/**
 * Which of the two tables exist, in one catalog-only query that also refuses either where
 * reading or writing it could run code another role wrote (history-tables.ts,
 * bookkeepingProblemSql): every read and write of the checksums comes after it.
 */
async function existingTables(db: Kysely<any>): Promise<{ history: boolean; checksums: boolean }> {
  const { rows } = await sql<{ history: boolean; checksums: boolean; problem: string | null }>`
    SELECT to_regclass(${historyTable()}) IS NOT NULL AS history,
           to_regclass(${checksumTable()}) IS NOT NULL AS checksums,
           ${sql.raw(bookkeepingTablesProblemSql())} AS problem
  `.execute(db)
  const { history, checksums, problem } = rows[0]!
  if (problem !== null) throw new MigrationHistoryError([problem])
  return { history, checksums }
}
