import { type Kysely, sql } from 'kysely'

/**
 * OpenRouter integration (plan 11-01): per-user encrypted OpenRouter API keys, and
 * x402_resources extended for the 'openrouter_instant' resource type.
 *
 * The schema is the plan's, object for object, so that a database where the plan's SQL was
 * pasted into the SQL Editor can be adopted as it is; 006 then applies Supabase's policy
 * advice. What differs is the lock profile on x402_resources, the busiest table of the app:
 * the plan's single transaction holds ACCESS EXCLUSIVE on it while it scans every row for the
 * new CHECK and builds the index, and every paid call waits.
 *
 * Here, steps with locks that do not grow with the table:
 *   1. one short transaction of catalog-only changes: the new table, and on x402_resources the
 *      columns, the foreign key and the new CHECK, both NOT VALID (no scan);
 *   2. VALIDATE CONSTRAINT for both, which takes SHARE UPDATE EXCLUSIVE: reads and writes go on;
 *   3. CREATE INDEX CONCURRENTLY.
 * So it runs outside the runner's transaction (`config`), and is re-runnable after a crash at
 * any point: step 1 is atomic and skipped once its table exists, validating twice is harmless,
 * and an INVALID index left by a killed concurrent build is dropped and built again. The
 * migrator records it only after step 3. The runner sets lock_timeout (a statement that cannot
 * get its lock gives up and is retried, instead of queueing every query of the app behind it)
 * and statement_timeout, which step 2 and 3 lift: they block no one, however long they take.
 */
export const config = { transaction: false }

const RESOURCE_TYPES_BEFORE = ['external', 'proxy', 'prompt', 'static', 'prompt_template']
const RESOURCE_TYPES = [...RESOURCE_TYPES_BEFORE, 'openrouter_instant']
// Written last in step 1: its presence tells that step 1 committed (see catalogChangesDone).
const OPENROUTER_CONFIG_COMMENT =
  'Settings of an openrouter_instant resource: {modelId, systemPrompt, params: {temperature, maxTokens, topP, ...}}.'

export async function up(db: Kysely<any>): Promise<void> {
  if (!(await catalogChangesDone(db))) await db.transaction().execute(addCatalogChanges)
  await sql`SET statement_timeout = 0`.execute(db)
  await db.transaction().execute(async (trx) => {
    await sql`ALTER TABLE x402_resources VALIDATE CONSTRAINT x402_resources_resource_type_check`.execute(trx)
    await sql`ALTER TABLE x402_resources VALIDATE CONSTRAINT x402_resources_openrouter_model_id_fkey`.execute(trx)
  })
  await buildIndexConcurrently(db)
}

/** Step 1: everything that changes only the catalog, in one transaction. */
async function addCatalogChanges(db: Kysely<any>): Promise<void> {
  // Section 1: the table. encrypted_api_key holds the secret format shared by every integration.
  await db.schema
    .createTable('user_openrouter_integrations')
    .addColumn('user_id', 'uuid', (col) =>
      col.primaryKey().references('auth.users.id').onDelete('cascade'),
    )
    .addColumn('encrypted_api_key', 'text', (col) => col.notNull())
    .addColumn('is_valid', 'boolean', (col) => col.defaultTo(true))
    .addColumn('last_verified_at', 'timestamptz')
    .addColumn('is_enabled', 'boolean', (col) => col.defaultTo(true))
    .addColumn('created_at', 'timestamptz', (col) => col.defaultTo(sql`now()`))
    .addColumn('updated_at', 'timestamptz', (col) => col.defaultTo(sql`now()`))
    .execute()

  // A new, empty table: a plain index build locks nothing anyone waits for.
  await db.schema
    .createIndex('idx_openrouter_integrations_user_enabled')
    .on('user_openrouter_integrations')
    .columns(['user_id', 'is_enabled'])
    .execute()

  // Section 2: row level security. PostgREST reaches this table as anon or authenticated,
  // and Supabase's default privileges grant them everything: the policies are the protection.
  await sql`ALTER TABLE user_openrouter_integrations ENABLE ROW LEVEL SECURITY`.execute(db)

  await sql`
    CREATE POLICY "Users can manage their own OpenRouter config" ON user_openrouter_integrations
    FOR ALL
    USING (auth.uid() = user_id)
    WITH CHECK (auth.uid() = user_id)
  `.execute(db)

  await sql`
    CREATE POLICY "Service role full access on OpenRouter" ON user_openrouter_integrations
    FOR ALL TO service_role
    USING (true)
  `.execute(db)

  // Section 3: updated_at, the Claude pattern.
  await sql`
    CREATE FUNCTION update_openrouter_integration_updated_at() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
    BEGIN
      NEW.updated_at = now();
      RETURN NEW;
    END;
    $$
  `.execute(db)

  await sql`
    CREATE TRIGGER openrouter_integration_updated_at
    BEFORE UPDATE ON user_openrouter_integrations
    FOR EACH ROW EXECUTE FUNCTION update_openrouter_integration_updated_at()
  `.execute(db)

  // Section 5, for the new table.
  await sql`
    COMMENT ON TABLE user_openrouter_integrations IS
      'OpenRouter API keys of users, encrypted; one row per user. Read by the backend as service_role to run openrouter_instant resources.'
  `.execute(db)
  await commentOnColumns(db, 'user_openrouter_integrations', {
    user_id: 'Owner of the key; deleting the auth user deletes the row.',
    encrypted_api_key: 'OpenRouter API key, never plaintext: encrypted with INTEGRATION_ENCRYPTION_SECRET as v2:<key id>:<nonce hex>:<ciphertext hex>:<tag hex> (AES-256-GCM, bound to user_id), or in the legacy <iv hex>:<ciphertext hex> (AES-256-CBC) until npm run keys:rotate.',
    is_valid: 'False once a check with OpenRouter rejected the key.',
    last_verified_at: 'When the key was last checked with OpenRouter.',
    is_enabled: 'The user switched the integration on (true) or off (false).',
    created_at: 'When the key was first stored.',
    updated_at: 'When the row last changed; set by trigger openrouter_integration_updated_at.',
  })

  // Section 4, last: from its first statement on x402_resources until COMMIT, the transaction
  // holds ACCESS EXCLUSIVE on the busiest table, so that stretch does as little as it can. One
  // ALTER TABLE: nullable columns without a default, and constraints NOT VALID, which change
  // only the catalog, whatever the size of the table. A resource outlives the catalog entry of
  // its model.
  await sql`
    ALTER TABLE x402_resources
      ADD COLUMN openrouter_model_id uuid,
      ADD COLUMN openrouter_config jsonb,
      ADD CONSTRAINT x402_resources_openrouter_model_id_fkey
        FOREIGN KEY (openrouter_model_id) REFERENCES ai_models (id) ON DELETE SET NULL NOT VALID,
      DROP CONSTRAINT x402_resources_resource_type_check,
      ADD CONSTRAINT x402_resources_resource_type_check ${resourceTypeCheck(RESOURCE_TYPES)} NOT VALID
  `.execute(db)
  await commentOnColumns(db, 'x402_resources', {
    openrouter_model_id: 'Model of an openrouter_instant resource, from ai_models; set to null when the model leaves the catalog.',
    openrouter_config: OPENROUTER_CONFIG_COMMENT,
  })
}

async function commentOnColumns(db: Kysely<any>, table: string, comments: Record<string, string>): Promise<void> {
  for (const [column, comment] of Object.entries(comments)) {
    await sql`COMMENT ON COLUMN ${sql.ref(`${table}.${column}`)} IS ${sql.lit(comment)}`.execute(db)
  }
}

function resourceTypeCheck(types: string[]) {
  return sql`CHECK (resource_type = ANY (ARRAY[${sql.join(types.map((type) => sql.lit(type)))}]))`
}

/**
 * Replaces the resource_type CHECK with one allowing `types`, NOT VALID: it holds for every new
 * row at once, and the existing rows are checked by VALIDATE CONSTRAINT without blocking writes.
 */
async function swapResourceTypeCheck(db: Kysely<any>, types: string[]): Promise<void> {
  await sql`
    ALTER TABLE x402_resources
      DROP CONSTRAINT IF EXISTS x402_resources_resource_type_check,
      ADD CONSTRAINT x402_resources_resource_type_check ${resourceTypeCheck(types)} NOT VALID
  `.execute(db)
}

/**
 * Step 3. A killed concurrent build leaves an INVALID index behind, and an index of that name
 * made by hand may index something else: either is dropped and built again.
 */
async function buildIndexConcurrently(db: Kysely<any>): Promise<void> {
  const { rows } = await sql<{ usable: boolean }>`
    SELECT indisvalid AND pg_get_indexdef(indexrelid) =
      'CREATE INDEX idx_x402_resources_openrouter_model ON public.x402_resources USING btree (openrouter_model_id) WHERE (openrouter_model_id IS NOT NULL)'
      AS usable
    FROM pg_index WHERE indexrelid = to_regclass('public.idx_x402_resources_openrouter_model')
  `.execute(db)
  if (rows[0]?.usable === true) return
  if (rows[0]) await sql`DROP INDEX CONCURRENTLY IF EXISTS idx_x402_resources_openrouter_model`.execute(db)
  await sql`
    CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_x402_resources_openrouter_model ON x402_resources (openrouter_model_id)
    WHERE openrouter_model_id IS NOT NULL
  `.execute(db)
}

/**
 * Whether step 1 committed before (a crash stopped the run after it). Step 1 is one transaction,
 * and its last statement writes the module's comment on x402_resources.openrouter_config: with
 * that comment there, all of step 1 is. A schema made by hand in its way (the plan's SQL pasted
 * in part or whole) has no such comment: step 1 then runs, and fails on the first object that
 * is already there, with nothing changed. A schema pasted in whole is adopted with
 * `migrate:baseline`, which compares everything.
 */
async function catalogChangesDone(db: Kysely<any>): Promise<boolean> {
  const { rows } = await sql<{ done: boolean }>`
    SELECT coalesce(col_description('public.x402_resources'::regclass, (
      SELECT attnum FROM pg_attribute WHERE attrelid = 'public.x402_resources'::regclass
         AND attname = 'openrouter_config' AND NOT attisdropped)) = ${sql.lit(OPENROUTER_CONFIG_COMMENT)}, false) AS done
  `.execute(db)
  return rows[0]!.done
}

/**
 * Whether every step of `down` has committed, for the runner to resume an interrupted rollback:
 * its last step drops the keys table, its trigger function and both columns in one transaction.
 */
export async function downDone(db: Kysely<any>): Promise<boolean> {
  const { rows } = await sql<{ done: boolean }>`
    SELECT to_regclass('public.user_openrouter_integrations') IS NULL
       AND NOT EXISTS (SELECT FROM pg_attribute WHERE attrelid = 'public.x402_resources'::regclass
                       AND attname IN ('openrouter_model_id', 'openrouter_config') AND NOT attisdropped) AS done
  `.execute(db)
  return rows[0]!.done
}

/**
 * Whether a step of `down` has committed, as the schema alone shows it where the history's mark
 * of the rollback was removed: its first adds the CHECK that keeps the two columns empty, and its
 * last drops them (and that CHECK with them). The runner migrates nothing forward from there.
 */
export async function downBegun(db: Kysely<any>): Promise<boolean> {
  const { rows } = await sql<{ begun: boolean }>`
    SELECT EXISTS (SELECT FROM pg_constraint WHERE conrelid = 'public.x402_resources'::regclass
                   AND conname = 'x402_resources_openrouter_rollback_check') AS begun
  `.execute(db)
  return rows[0]!.begun || (await downDone(db))
}

/**
 * Whether a step of `down` may have committed, for the runner to tell, where the history marks
 * a rollback, a mark that an attempt stopped before its first step committed left (stale) from
 * one behind which a step did. Besides {@link downBegun}, any trace of the first step counts,
 * should its rollback CHECK have been dropped by hand: a type CHECK without openrouter_instant
 * (or none), and a backup that a rollback of 005 made in x402_backup, stamped at or after
 * `markedAt` (the mark's time, where the runner knows it: a backup of an earlier rollback that
 * finished tells nothing of this one). In doubt it says yes: the mark stands, and only
 * migrate:down ends it.
 */
export async function downMayHaveBegun(db: Kysely<any>, markedAt?: Date): Promise<boolean> {
  // The stamp of a backup's name (first step: UTC, to the millisecond), of the mark's time.
  const since =
    markedAt === undefined
      ? sql`''`
      : sql`to_char(${markedAt.toISOString()}::timestamptz AT TIME ZONE 'UTC', 'YYYYMMDD"T"HH24MISSMS')`
  const { rows } = await sql<{ traced: boolean }>`
    SELECT NOT EXISTS (SELECT FROM pg_constraint WHERE conrelid = 'public.x402_resources'::regclass
                       AND conname = 'x402_resources_resource_type_check'
                       AND pg_get_constraintdef(oid) LIKE '%openrouter_instant%')
        OR EXISTS (SELECT FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                   WHERE n.nspname = 'x402_backup' AND left(c.relname, 4) = '005_'
                     -- A name without a stamp counts: in doubt, yes.
                     AND NOT (right(c.relname, 18) ~ '^[0-9]{8}T[0-9]{9}$' AND right(c.relname, 18) < ${since})) AS traced
  `.execute(db)
  return rows[0]!.traced || (await downBegun(db))
}

/**
 * The rows `down` deletes (moved to x402_backup with the data-loss opt-in), for the runner to
 * refuse before it begins while rows of other tables reference them through a foreign key.
 */
export const downDeletes = [
  { table: 'public.x402_resources', where: "resource_type = 'openrouter_instant'" },
  { table: 'public.user_openrouter_integrations', where: 'true' },
] as const

/**
 * The reverse of `up`, with the same lock discipline, and without losing data.
 *
 * It counts what a rollback would destroy: stored keys in user_openrouter_integrations,
 * resources of type 'openrouter_instant' (the restored CHECK rejects them), and resources with
 * openrouter_model_id or openrouter_config set. If there is any, it refuses with the counts,
 * before it changes anything, unless the session opted in with `x402.allow_data_loss = on`
 * (the runner sets it for `migrate:down -- --allow-data-loss` or MIGRATION_ALLOW_DATA_LOSS=true).
 * With the opt-in, the rows are moved, not dropped: into tables of schema x402_backup named
 * after this migration and the time, from where they can be restored. The check is SQL, so the
 * script that `migrate:sql -- 005 --down` exports for the SQL Editor refuses in the same way.
 *
 * Steps, each safe to run again after a crash:
 *   1. one transaction: the check (and, with the opt-in, the move), then, briefly on
 *      x402_resources, the five-type CHECK back and a CHECK that keeps the two columns empty,
 *      both NOT VALID, so that nothing new arrives in what is to be dropped;
 *   2. VALIDATE both: SHARE UPDATE EXCLUSIVE, writes go on. A row written between the check and
 *      the constraints makes it fail, with that row still there;
 *   3. one transaction: the keys table is locked and checked again (a user may have stored a key
 *      during 2), then the catalog-only drops, the index among them. Not DROP INDEX CONCURRENTLY:
 *      it would be the one statement outside a transaction, whose event triggers nothing could
 *      roll back, and the drop of the columns takes ACCESS EXCLUSIVE on x402_resources anyway.
 */
export async function down(db: Kysely<any>): Promise<void> {
  await db.transaction().execute(async (trx) => {
    // First: what no step can get past, or undo, refused before anything changes.
    await refuseWhatItCannotPass(trx, 'Nothing was changed')
    // Noted before the check: what a trigger of the rows it moves drops is compared too.
    await notePresence(trx)
    await keepOrRefuse(trx, 'all')
    await swapResourceTypeCheck(trx, RESOURCE_TYPES_BEFORE)
    await sql`
      ALTER TABLE x402_resources
        DROP CONSTRAINT IF EXISTS x402_resources_openrouter_rollback_check,
        ADD CONSTRAINT x402_resources_openrouter_rollback_check
          CHECK (openrouter_model_id IS NULL AND openrouter_config IS NULL) NOT VALID
    `.execute(trx)
    // Again, now that the ALTER TABLE holds its lock on x402_resources: a row of another type
    // committed while it waited (after the first count) is seen here, and step 1 rolls back.
    await refuseWhatItCannotPass(trx, 'Nothing was changed (it was rolled back)', 'types')
    await refuseValuesLeft(trx)
    await refuseUnreported(trx, 'Nothing was changed (it was rolled back)')
  })
  await sql`SET statement_timeout = 0`.execute(db)
  await db.transaction().execute(async (trx) => {
    await watchTables(trx)
    await notePresence(trx)
    await sql`ALTER TABLE x402_resources VALIDATE CONSTRAINT x402_resources_resource_type_check`.execute(trx)
    await sql`ALTER TABLE x402_resources VALIDATE CONSTRAINT x402_resources_openrouter_rollback_check`.execute(trx)
    await refuseUnreported(trx, LATER_STEP_UNDONE)
  })
  await db.transaction().execute(async (trx) => {
    // Noted before the check, as in step 1: what an event trigger of a backup it makes drops counts.
    await notePresence(trx)
    // An object made since the first step's check (during step 2) would fail the drops below.
    await refuseWhatItCannotPass(trx, LATER_STEP_UNDONE)
    await keepOrRefuse(trx, 'keys')
    await sql`DROP TABLE IF EXISTS user_openrouter_integrations`.execute(trx)
    await sql`DROP FUNCTION IF EXISTS update_openrouter_integration_updated_at()`.execute(trx)
    // Last, as in up: ACCESS EXCLUSIVE on x402_resources for as short a time as it can. The
    // rollback CHECK goes with the columns.
    await sql`
      -- squawk-ignore require-concurrent-index-deletion
      DROP INDEX IF EXISTS idx_x402_resources_openrouter_model
    `.execute(trx)
    await sql`ALTER TABLE x402_resources DROP COLUMN IF EXISTS openrouter_config, DROP COLUMN IF EXISTS openrouter_model_id`.execute(trx)
    await refuseUnreported(trx, LATER_STEP_UNDONE)
  })
}

/**
 * Refuses, at the end of the first step, where rows of x402_resources still hold what the step
 * emptied (an OpenRouter column, or the type openrouter_instant), under its lock: a trigger that
 * puts a value back (production's "updated_at trigger that does more"), or a row committed while
 * it waited for the lock. Committed, the step would leave a rollback CHECK that every later step,
 * and every write of such a row, fails. The step rolls back instead.
 */
async function refuseValuesLeft(db: Kysely<any>): Promise<void> {
  await sql`
DO $values_left$
DECLARE
  left_rows bigint;
  triggers text;
BEGIN
  SELECT count(*) INTO left_rows FROM public.x402_resources
   WHERE openrouter_model_id IS NOT NULL OR openrouter_config IS NOT NULL
      OR resource_type::text = 'openrouter_instant';
  IF left_rows > 0 THEN
    SELECT string_agg(tgname, ', ' ORDER BY tgname) INTO triggers FROM pg_trigger
     WHERE tgrelid = 'public.x402_resources'::regclass AND NOT tgisinternal AND tgenabled <> 'D';
    RAISE EXCEPTION 'Rolling back 005_add_openrouter_integration emptied openrouter_model_id and openrouter_config and moved the openrouter_instant resources, and % row(s) of x402_resources hold them again: a trigger of the table puts values back (its triggers: %), or a row was written while it waited for its lock. Nothing was changed (it was rolled back). Keep 005; or change such a trigger first so that it leaves both columns empty, then roll back.',
      left_rows, coalesce(triggers, 'none');
  END IF;
END
$values_left$
  `.execute(db)
}

/**
 * What the steps of `down` cannot get past, refused with `refusal` before the step that runs it
 * changes anything, the data-loss opt-in notwithstanding (it moves only the keys and the rows of
 * 005's own to x402_backup):
 * - rows of x402_resources of a resource type that the CHECK of before 005, which the first step
 *   puts back, rejects (an extra value that a hand-made CHECK allows): its VALIDATE would fail
 *   with the keys already moved, and no run of the module moves or changes those rows;
 * - objects that 005 did not make and that depend on what the last step drops (the two columns,
 *   the keys table, its row type, its trigger function): views, foreign keys, constraints,
 *   indexes, triggers, rules and policies of other tables, generated columns, functions with
 *   SQL-standard bodies. Without CASCADE the drop fails after the keys were moved; with it,
 *   production's objects would go. What belongs to the keys table itself goes with it.
 */
async function refuseWhatItCannotPass(
  db: Kysely<any>,
  refusal: string,
  part: 'all' | 'types' = 'all',
): Promise<void> {
  await sql`
DO $cannot_pass$
DECLARE
  resources oid := to_regclass('public.x402_resources');
  keys oid := to_regclass('public.user_openrouter_integrations');
  columns int2[];
  unknown_types text;
  dependents text;
  parents text;
  children text;
  row_users text;
  members text;
  widened text;
  problems text[] := '{}';
BEGIN
  IF resources IS NULL THEN
    RETURN;
  END IF;
  columns := ARRAY(SELECT attnum FROM pg_attribute WHERE attrelid = resources AND NOT attisdropped
                      AND attname IN ('openrouter_model_id', 'openrouter_config'));
  SELECT string_agg(format('%L: %s', t.resource_type, t.n), ', ' ORDER BY t.resource_type) INTO unknown_types
    FROM (SELECT resource_type, count(*) AS n FROM public.x402_resources
           WHERE resource_type::text <> ALL (ARRAY[${sql.join(RESOURCE_TYPES.map((type) => sql.lit(type)))}])
           GROUP BY resource_type) AS t;
  IF unknown_types <> '' THEN
    problems := problems || format('x402_resources holds rows of resource types that the resource_type CHECK of before 005, '
      'which it puts back, rejects (it allows %s): %s. The module does not move or change those rows: keep 005 while those '
      'types are in use, or first give those rows a resource type that the schema before 005 knows',
      ${sql.lit(RESOURCE_TYPES_BEFORE.join(', '))}, unknown_types);
  END IF;
  IF ${sql.lit(part === 'all')} THEN
  -- A CHECK on resource_type alone (a hand-made one) that allows values beyond the six of 005:
  -- its first step puts the five of before 005 in place of the type CHECK, and no up puts the
  -- extra values back. Its quoted literals, in either form (IN (…) or = ANY (ARRAY[…])).
  SELECT string_agg(format('%I allows %s', x.conname, x.extra), '; ' ORDER BY x.conname) INTO widened
    FROM (SELECT c.conname, string_agg(quote_literal(v.value), ', ' ORDER BY v.value) AS extra
            FROM pg_constraint c
            JOIN pg_attribute a ON a.attrelid = resources AND a.attname = 'resource_type' AND NOT a.attisdropped
           CROSS JOIN LATERAL (SELECT DISTINCT m[1] AS value
                                 FROM regexp_matches(pg_get_constraintdef(c.oid), '''([^'']*)''', 'g') AS m) AS v
           WHERE c.conrelid = resources AND c.contype = 'c' AND c.conkey = ARRAY[a.attnum]
             AND v.value <> ALL (ARRAY[${sql.join(RESOURCE_TYPES.map((type) => sql.lit(type)))}])
           GROUP BY c.conname) AS x;
  IF widened <> '' THEN
    problems := problems || format('the CHECK on x402_resources.resource_type allows values beyond the six of 005 (%s): %s. '
      'Its first step puts the CHECK of before 005 (%s) in place of the type CHECK, which would take those values away '
      'from the app for good (no up puts them back): keep 005, or narrow that CHECK yourself first',
      ${sql.lit(RESOURCE_TYPES.join(', '))}, widened, ${sql.lit(RESOURCE_TYPES_BEFORE.join(', '))});
  END IF;
  SELECT string_agg(format('%s (depends on %s)', y.what, y.on_what), '; ' ORDER BY y.what) INTO dependents
    FROM (SELECT x.what, string_agg(DISTINCT x.on_what, ', ') AS on_what FROM (SELECT CASE WHEN d.classid = 'pg_rewrite'::regclass AND r.rulename = '_RETURN'
                      THEN pg_describe_object('pg_class'::regclass, r.ev_class, 0)
                      ELSE pg_describe_object(d.classid, d.objid, d.objsubid) END AS what,
                 pg_describe_object(d.refclassid, d.refobjid, d.refobjsubid) AS on_what
            FROM pg_depend d LEFT JOIN pg_rewrite r ON d.classid = 'pg_rewrite'::regclass AND r.oid = d.objid
           WHERE d.deptype IN ('n', 'a')
             AND ((d.refclassid = 'pg_class'::regclass AND d.refobjid = resources AND d.refobjsubid = ANY (columns))
               OR (d.refclassid = 'pg_class'::regclass
                   AND d.refobjid IN (SELECT keys UNION ALL SELECT indexrelid FROM pg_index WHERE indrelid = keys))
               OR (d.refclassid = 'pg_type'::regclass
                   AND d.refobjid IN (SELECT t.oid FROM pg_type t JOIN pg_class c ON c.oid = keys
                                       WHERE t.oid = c.reltype OR t.typelem = c.reltype))
               OR (d.refclassid = 'pg_proc'::regclass
                   AND d.refobjid = to_regprocedure('public.update_openrouter_integration_updated_at()')))
             -- What belongs to the keys table goes with it.
             AND NOT (d.refobjid = keys AND d.deptype = 'a')
             AND NOT (d.classid = 'pg_class'::regclass AND d.objid IN (SELECT keys UNION ALL SELECT indexrelid FROM pg_index WHERE indrelid = keys))
             AND NOT (d.classid = 'pg_constraint'::regclass AND d.objid IN (SELECT oid FROM pg_constraint WHERE conrelid = keys))
             AND NOT (d.classid = 'pg_trigger'::regclass AND d.objid IN (SELECT oid FROM pg_trigger WHERE tgrelid = keys))
             AND NOT (d.classid = 'pg_policy'::regclass AND d.objid IN (SELECT oid FROM pg_policy WHERE polrelid = keys))
             AND NOT (d.classid = 'pg_rewrite'::regclass AND r.ev_class = keys)
             AND NOT (d.classid = 'pg_statistic_ext'::regclass AND d.objid IN (SELECT oid FROM pg_statistic_ext WHERE stxrelid = keys))
             AND NOT (d.classid = 'pg_attrdef'::regclass
                      AND d.objid IN (SELECT oid FROM pg_attrdef WHERE adrelid = keys OR (adrelid = resources AND adnum = ANY (columns))))
             -- And what 005 made on x402_resources with the columns.
             AND NOT (d.classid = 'pg_constraint'::regclass
                      AND d.objid IN (SELECT oid FROM pg_constraint WHERE conrelid = resources
                                         AND conname IN ('x402_resources_openrouter_model_id_fkey', 'x402_resources_openrouter_rollback_check')))
             AND NOT (d.classid = 'pg_class'::regclass AND d.objid = to_regclass('public.idx_x402_resources_openrouter_model'))
         ) AS x GROUP BY x.what) AS y;
  -- A parent (inheritance, or a partitioned table x402_resources is attached to) holds the two
  -- columns too: the last step cannot drop an inherited column (rev-f2 F1).
  SELECT string_agg(p.inhparent::regclass::text, ', ' ORDER BY p.inhparent::regclass::text) INTO parents
    FROM pg_inherits p WHERE p.inhrelid = resources;
  IF parents <> '' THEN
    problems := problems || format('x402_resources inherits from, or is a partition of, %s: the last step cannot drop '
      'columns it inherits. The module does not detach it: keep 005, or detach it yourself first (NO INHERIT, or '
      'DETACH PARTITION), roll back, and attach it again after', parents);
  END IF;
  -- Children inherit the two columns, and what depends on theirs is not found above (rev-g F2);
  -- a typed table's columns belong to its type.
  SELECT string_agg(p.inhrelid::regclass::text, ', ' ORDER BY p.inhrelid::regclass::text) INTO children
    FROM pg_inherits p WHERE p.inhparent = resources;
  IF children <> '' THEN
    problems := problems || format('tables inherit from x402_resources: %s. The last step would drop the two columns '
      'from them too. The module does not detach them: keep 005, or detach them yourself first, roll back, and '
      'attach them again after', children);
  END IF;
  IF (SELECT reloftype FROM pg_class WHERE oid = resources) <> 0 THEN
    problems := problems || format('x402_resources is a typed table (OF %s): its columns are its type''s. Keep 005, or '
      'make it NOT OF that type first', (SELECT reloftype::regtype::text FROM pg_class WHERE oid = resources));
  END IF;
  IF dependents <> '' THEN
    problems := problems || format('objects that 005 did not make depend on what its last step drops: %s. The module does not '
      'drop or change them: keep 005, or set each one aside yourself first (keep its definition, then drop it, or alter it so '
      'that it no longer depends on them), roll back, and put it back after in a form that fits the schema before 005', dependents);
  END IF;
  -- Columns of other tables, and types, that keep x402_resources rows as values (its row type,
  -- its array type, and domains, composites or ranges over them): the last step's DROP COLUMN
  -- takes openrouter_model_id and openrouter_config out of every such value, unreported by any
  -- counter. pg_depend records them against the row type, not the two columns. Functions that
  -- take or return the row type are left: they lose no stored value.
  SELECT string_agg(DISTINCT format('%s (of %s)', pg_describe_object(d.classid, d.objid, d.objsubid),
                                    pg_describe_object(d.refclassid, d.refobjid, 0)), '; ') INTO row_users
    FROM pg_depend d
   WHERE d.deptype IN ('n', 'a') AND d.refclassid = 'pg_type'::regclass
     AND d.classid IN ('pg_class'::regclass, 'pg_type'::regclass)
     AND d.refobjid IN (SELECT t.oid FROM pg_type t JOIN pg_class c ON c.oid = resources
                         WHERE t.oid = c.reltype OR (t.typelem = c.reltype AND t.typcategory = 'A'));
  IF row_users <> '' THEN
    problems := problems || format('columns or types keep rows of x402_resources as values: %s. Its last step drops '
      'openrouter_model_id and openrouter_config from that row type, and so from every value kept there: keep 005, or '
      'set each one aside yourself first (keep its rows elsewhere, then drop it or change its type), roll back, and put '
      'it back after', row_users);
  END IF;
  -- What the last step drops, a member of an extension: DROP fails (2BP01) after the keys moved.
  SELECT string_agg(format('%s (member of %s)', x.what, x.ext), '; ' ORDER BY x.what) INTO members
    FROM (SELECT pg_describe_object(d.classid, d.objid, d.objsubid) AS what, pg_describe_object(d.refclassid, d.refobjid, 0) AS ext
    FROM pg_depend d
   WHERE d.deptype = 'e' AND d.refclassid = 'pg_extension'::regclass
     AND ((d.classid = 'pg_class'::regclass
           AND d.objid IN (SELECT keys UNION ALL SELECT indexrelid FROM pg_index WHERE indrelid = keys
                           UNION ALL SELECT to_regclass('public.idx_x402_resources_openrouter_model')))
       OR (d.classid = 'pg_type'::regclass
           AND d.objid IN (SELECT t.oid FROM pg_type t JOIN pg_class c ON c.oid = keys
                            WHERE t.oid = c.reltype OR t.typelem = c.reltype))
       OR (d.classid = 'pg_proc'::regclass
           AND d.objid = to_regprocedure('public.update_openrouter_integration_updated_at()')))) AS x;
  IF members <> '' THEN
    problems := problems || format('what its last step drops belongs to an extension, which a DROP cannot take from it: %s. '
      'Keep 005, or take each out of its extension yourself first (ALTER EXTENSION … DROP …), then roll back', members);
  END IF;
  END IF;
  IF cardinality(problems) > 0 THEN
    RAISE EXCEPTION 'Rolling back 005_add_openrouter_integration cannot complete, even with --allow-data-loss (which moves only the stored keys and the rows of 005 to schema x402_backup): %. %.',
      array_to_string(problems, '. Also, '), ${sql.lit(refusal)};
  END IF;
END
$cannot_pass$
  `.execute(db)
}

/**
 * Per table, the transaction's counts of deleted and changed rows and its storage, which TRUNCATE
 * and a rewrite (ALTER COLUMN … TYPE) replace without counting a row: as jsonb, keyed by oid.
 * The module's bookkeeping in x402_migrations too: no step of this down writes there (the runner
 * deletes its history record in a transaction of its own, checked by down-guard.ts).
 */
const WATCHED_TABLES = `(SELECT coalesce(jsonb_object_agg(c.oid::text, jsonb_build_array(pg_stat_get_xact_tuples_deleted(c.oid),
           pg_stat_get_xact_tuples_updated(c.oid), c.relfilenode::text)), '{}')
     FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind = 'r' AND n.nspname NOT LIKE 'pg\\_%' AND n.nspname <> 'information_schema')`

/** What a refusal of a later step of `down` says was undone: that step alone. */
const LATER_STEP_UNDONE =
  'This step was rolled back: the backups are as the earlier steps left them, and nothing that holds data was dropped'

/**
 * The count and a digest of the rows of `from` (a FROM item; its rows' text, which every type
 * has), as numeric[] `{count, a, b}`: a and b sum the two halves of each row's md5, so the order
 * of the rows does not change it, and it is read row by row, whatever their number.
 */
function rowsDigest(from: string): string {
  return `(SELECT ARRAY[count(*), coalesce(sum(('x' || left(h, 16))::bit(64)::bigint), 0),
                 coalesce(sum(('x' || right(h, 16))::bit(64)::bigint), 0)] FROM (SELECT md5(r::text) AS h FROM ${from} AS r) AS d)`
}

/**
 * The backups this rollback made so far, in its earlier transactions too, as jsonb: the backup's
 * qualified name and the {@link rowsDigest} of the rows moved into it. A setting of the session
 * (the rollback's transactions run in one), which a transaction that rolls back puts back.
 */
const BACKUPS_HELD = `coalesce(nullif(current_setting('x402.backups_005', true), ''), '{}')::jsonb`

/**
 * The database's large objects as `<count>:<md5 of their oids>:<pages deleted>:<pages updated>`:
 * lo_unlink removes one without any table's counters showing it, and lo_truncate or lo_put empty
 * or overwrite one in place. The pages are the rows of pg_catalog.pg_largeobject that this
 * transaction deleted and updated so far (a new large object only adds some).
 */
const LARGE_OBJECTS = `(SELECT count(*) || ':' || coalesce(md5(string_agg(oid::text, ',' ORDER BY oid)), '') || ':' ||
            pg_stat_get_xact_tuples_deleted('pg_catalog.pg_largeobject'::regclass) || ':' ||
            pg_stat_get_xact_tuples_updated('pg_catalog.pg_largeobject'::regclass)
     FROM pg_catalog.pg_largeobject_metadata)`

/**
 * What changed between two values of {@link LARGE_OBJECTS}, the SQL expressions `before` and
 * `after`, as text: '' where nothing did.
 */
function largeObjectChanges(before: string, after: string): string {
  const part = (value: string, n: number) => `split_part(${value}, ':', ${n})`
  const count = (value: string, n: number) => `${part(value, n)}::bigint`
  return `concat_ws('; ',
      CASE WHEN ${count(after, 1)} < ${count(before, 1)}
             THEN format('large objects: %s removed', ${count(before, 1)} - ${count(after, 1)})
           WHEN ${part(after, 2)} <> ${part(before, 2)} THEN 'large objects: removed or replaced' END,
      CASE WHEN ${count(after, 3)} > ${count(before, 3)} OR ${count(after, 4)} > ${count(before, 4)}
             THEN format('large objects: content deleted or overwritten (%s page(s) deleted, %s changed)',
                         ${count(after, 3)} - ${count(before, 3)}, ${count(after, 4)} - ${count(before, 4)}) END)`
}

/**
 * The rows of the catalogs that define foreign access that the session inserted, updated and
 * deleted so far, as jsonb keyed by catalog: `[inserted, updated, deleted]` (down-guard.ts's
 * FOREIGN_CATALOGS). Code that the down fires can make a read-only foreign table writable and
 * back, or make one and drop it, around a delete through it that no counter of this server sees.
 * The counts hold what the session has not reported from earlier transactions: only a change
 * from a value noted in the same transaction tells.
 */
const FOREIGN_CATALOGS = `(SELECT jsonb_object_agg(c::text, jsonb_build_array(pg_stat_get_xact_tuples_inserted(c),
              pg_stat_get_xact_tuples_updated(c), pg_stat_get_xact_tuples_deleted(c)))
     FROM unnest(ARRAY['pg_catalog.pg_foreign_data_wrapper', 'pg_catalog.pg_foreign_server',
                       'pg_catalog.pg_foreign_table', 'pg_catalog.pg_user_mapping']::regclass[]) AS c)`

/**
 * A recursive CTE `used(tbl, typ)`: each table of `holding` (an oid[] variable) with each type
 * whose values it keeps, through its columns: directly, as an array's elements, through a
 * domain, within a composite type, or as the bounds of a range or multirange (nested as deep as
 * they go).
 */
const TYPES_USED = `WITH RECURSIVE used(tbl, typ) AS (
          SELECT a.attrelid, a.atttypid FROM pg_attribute a
           WHERE a.attrelid = ANY (holding) AND a.attnum > 0 AND NOT a.attisdropped
          UNION
          SELECT u.tbl, x.typ FROM used u JOIN pg_type ty ON ty.oid = u.typ
            CROSS JOIN LATERAL (SELECT ty.typbasetype WHERE ty.typtype = 'd'
                                UNION ALL SELECT ty.typelem WHERE ty.typcategory = 'A' AND ty.typelem <> 0
                                UNION ALL SELECT a.atttypid FROM pg_attribute a
                                 WHERE ty.typtype = 'c' AND a.attrelid = ty.typrelid AND a.attnum > 0
                                   AND NOT a.attisdropped
                                UNION ALL SELECT rg.rngsubtype FROM pg_range rg WHERE ty.typtype = 'r' AND rg.rngtypid = ty.oid
                                UNION ALL SELECT rg.rngtypid FROM pg_range rg WHERE ty.typtype = 'm' AND rg.rngmultitypid = ty.oid
                               ) AS x(typ))`

/**
 * The composite types whose values the tables of `holding` (an oid[] variable) keep, through
 * their columns (directly, as an array's elements, through a domain, or within another composite
 * type), as jsonb keyed by the type's pg_class oid: `[name, [oids of those tables], {attnum:
 * [attribute, oid of its type]}]`. ALTER TYPE … DROP ATTRIBUTE … CASCADE destroys that
 * attribute's value in every row, and no counter, storage or column of the tables shows it.
 */
const COMPOSITE_TYPES = `(SELECT coalesce(jsonb_object_agg(u.type::text, jsonb_build_array(format('%I.%I', ns.nspname, c.relname), u.tables,
         (SELECT coalesce(jsonb_object_agg(a.attnum::text, jsonb_build_array(format('%I', a.attname), a.atttypid::text)), '{}')
            FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped))), '{}')
  FROM (${TYPES_USED}
        SELECT ty.typrelid AS type, jsonb_agg(DISTINCT u.tbl::text) AS tables
          FROM used u JOIN pg_type ty ON ty.oid = u.typ WHERE ty.typtype = 'c' GROUP BY ty.typrelid) AS u
  JOIN pg_class c ON c.oid = u.type JOIN pg_namespace ns ON ns.oid = c.relnamespace)`

/**
 * The enum types whose values the tables of `holding` keep, reached as in {@link
 * COMPOSITE_TYPES}, as jsonb keyed by the type's oid: `[name, [oids of those tables], {oid of a
 * label in pg_enum: label}]`. A row keeps the label's oid: ALTER TYPE … RENAME VALUE changes what
 * every row holding it reads, and no counter, storage or column of the tables shows it.
 */
const ENUM_TYPES = `(SELECT coalesce(jsonb_object_agg(u.type::text, jsonb_build_array(format('%I.%I', ns.nspname, et.typname), u.tables,
         (SELECT coalesce(jsonb_object_agg(e.oid::text, e.enumlabel), '{}') FROM pg_enum e WHERE e.enumtypid = et.oid))), '{}')
  FROM (${TYPES_USED}
        SELECT ty.oid AS type, jsonb_agg(DISTINCT u.tbl::text) AS tables
          FROM used u JOIN pg_type ty ON ty.oid = u.typ WHERE ty.typtype = 'e' GROUP BY ty.oid) AS u
  JOIN pg_type et ON et.oid = u.type JOIN pg_namespace ns ON ns.oid = et.typnamespace)`

/** Notes, first in a transaction of `down`, what {@link refuseUnreported} compares with. */
async function watchTables(db: Kysely<any>): Promise<void> {
  await sql`SELECT set_config('x402.watch_005', ${sql.raw(WATCHED_TABLES)}::text, true),
                  set_config('x402.watch_005_lo', ${sql.raw(LARGE_OBJECTS)}, true)`.execute(db)
}

/**
 * Each table that holds a row, with its columns, in the transaction's setting
 * `x402.present_005`, the composite types their values use, in `x402.present_types_005`, and
 * the labels of the enum types they use, in `x402.present_enums_005`: dropped with its rows (or
 * a column, or an attribute of such a type, with its values), or a label renamed, no counter
 * shows it.
 */
async function notePresence(db: Kysely<any>): Promise<void> {
  await sql`
DO $presence$
DECLARE
  t record;
  present boolean;
  noted jsonb := '{}';
  holding oid[] := '{}';
BEGIN
  -- The catalogs of foreign access, as this transaction found them, for refuseUnreported.
  PERFORM set_config('x402.watch_005_foreign', ${sql.raw(FOREIGN_CATALOGS)}::text, true);
  FOR t IN SELECT c.oid, format('%I.%I', ns.nspname, c.relname) AS name,
                  has_table_privilege(c.oid, 'SELECT') AND NOT row_security_active(c.oid) AS readable
             FROM pg_class c JOIN pg_namespace ns ON ns.oid = c.relnamespace
            WHERE c.relkind = 'r' AND ns.nspname NOT LIKE 'pg\\_%' AND ns.nspname <> 'information_schema' LOOP
    present := true;
    -- Not read where an index calls a function not built in: planning the read would compute
    -- its calls of constant arguments with this session's power (review rev12).
    IF t.readable AND NOT EXISTS (SELECT FROM pg_index i JOIN pg_depend d ON d.classid = 'pg_class'::regclass
                                    AND d.objid = i.indexrelid AND d.refclassid = 'pg_proc'::regclass
                                  WHERE i.indrelid = t.oid) THEN
      EXECUTE format('SELECT EXISTS (SELECT FROM %s)', t.name) INTO present;
    END IF;
    IF present THEN
      holding := holding || t.oid;
      noted := noted || jsonb_build_object(t.oid::text, jsonb_build_array(t.name,
        (SELECT coalesce(jsonb_object_agg(a.attnum::text, format('%I', a.attname)), '{}') FROM pg_attribute a
          WHERE a.attrelid = t.oid AND a.attnum > 0 AND NOT a.attisdropped)));
    END IF;
  END LOOP;
  PERFORM set_config('x402.present_005', noted::text, true);
  PERFORM set_config('x402.present_types_005', ${sql.raw(COMPOSITE_TYPES)}::text, true);
  PERFORM set_config('x402.present_enums_005', ${sql.raw(ENUM_TYPES)}::text, true);
END
$presence$
  `.execute(db)
}

/**
 * Last in each transaction of `down` that checks what it loses, before COMMIT: after
 * keepOrRefuse, nothing else may delete, change, truncate or rewrite rows of any table (a trigger,
 * a rule, an event trigger of the statements that follow it), and, last, each backup this
 * rollback made so far, in this transaction or an earlier one, must be a permanent ordinary table
 * with no rule and hold the rows moved into it (their count and digest, which keepOrRefuse noted). Otherwise it all rolls back, named, the
 * message saying what `undone` says. Foreign servers, tables or user mappings changed since
 * notePresence ({@link FOREIGN_CATALOGS}) roll it back too: a delete through them is unseen.
 */
async function refuseUnreported(db: Kysely<any>, undone: string): Promise<void> {
  await sql`
DO $unreported$
DECLARE
  held jsonb := ${sql.raw(BACKUPS_HELD)};
  backup text;
  moved numeric[];
  holds numeric[];
  unmade text;
  unkept text[] := '{}';
  watched jsonb := coalesce(nullif(current_setting('x402.watch_005', true), ''), '{}')::jsonb;
  present jsonb := coalesce(nullif(current_setting('x402.present_005', true), ''), '{}')::jsonb;
  types jsonb := coalesce(nullif(current_setting('x402.present_types_005', true), ''), '{}')::jsonb;
  enums jsonb := coalesce(nullif(current_setting('x402.present_enums_005', true), ''), '{}')::jsonb;
  lo text := coalesce(current_setting('x402.watch_005_lo', true), '');
  lo_now text;
  noted_foreign jsonb := coalesce(nullif(current_setting('x402.watch_005_foreign', true), ''), '{}')::jsonb;
  foreign_changed text;
  unreported text;
BEGIN
  -- A deferred trigger would fire at COMMIT, after this check: fired now, what it does is counted.
  SET CONSTRAINTS ALL IMMEDIATE;
  SELECT string_agg(format('%I.%I: %s', n.nspname, c.relname, concat_ws(', ',
           CASE WHEN c.relfilenode::text <> w.v ->> 2 THEN 'truncated or rewritten' END,
           CASE WHEN pg_stat_get_xact_tuples_deleted(c.oid) > (w.v ->> 0)::bigint THEN 'rows deleted' END,
           CASE WHEN pg_stat_get_xact_tuples_updated(c.oid) > (w.v ->> 1)::bigint THEN 'rows changed' END)), '; ')
    INTO unreported
    FROM jsonb_each(watched) AS w(k, v) JOIN pg_class c ON c.oid = w.k::oid JOIN pg_namespace n ON n.oid = c.relnamespace
   WHERE c.relfilenode::text <> w.v ->> 2
      OR pg_stat_get_xact_tuples_deleted(c.oid) > (w.v ->> 0)::bigint
      OR pg_stat_get_xact_tuples_updated(c.oid) > (w.v ->> 1)::bigint;
  -- Its own drops are of what its check emptied: the keys table, and the two columns that
  -- the validated rollback CHECK keeps null.
  SELECT concat_ws('; ', unreported, string_agg(lost, '; ')) INTO unreported FROM (
    SELECT format('%s: dropped, with its rows', p.v ->> 0) AS lost
      FROM jsonb_each(present) AS p(k, v) WHERE NOT EXISTS (SELECT FROM pg_class WHERE oid = p.k::oid)
    UNION ALL
    SELECT format('%s.%s: dropped, with its values', p.v ->> 0, a.value #>> '{}')
      FROM jsonb_each(present) AS p(k, v), jsonb_each(p.v -> 1) AS a(key, value)
     WHERE EXISTS (SELECT FROM pg_class WHERE oid = p.k::oid)
       AND NOT EXISTS (SELECT FROM pg_attribute WHERE attrelid = p.k::oid AND attnum = a.key::int AND NOT attisdropped)
       AND NOT (p.k::oid = 'public.x402_resources'::regclass AND a.value #>> '{}' IN ('openrouter_model_id', 'openrouter_config'))
    UNION ALL
    -- An attribute of a composite type whose values a table that held rows keeps, gone (ALTER TYPE
    -- … DROP ATTRIBUTE … CASCADE) or of another type: each row loses that value.
    SELECT format('attribute %s.%s of a composite type that %s use(s): %s, with its values', y.v ->> 0, a.value ->> 0,
             (SELECT string_agg(coalesce(present -> u.t ->> 0, u.t), ', ' ORDER BY u.t) FROM jsonb_array_elements_text(y.v -> 1) AS u(t)),
             CASE WHEN EXISTS (SELECT FROM pg_attribute WHERE attrelid = y.k::oid AND attnum = a.key::int AND NOT attisdropped)
                  THEN 'type changed' ELSE 'dropped' END)
      FROM jsonb_each(types) AS y(k, v), jsonb_each(y.v -> 2) AS a(key, value)
     WHERE EXISTS (SELECT FROM pg_class WHERE oid = y.k::oid)
       AND NOT EXISTS (SELECT FROM pg_attribute WHERE attrelid = y.k::oid AND attnum = a.key::int AND NOT attisdropped
                         AND atttypid::text = a.value ->> 1)
    UNION ALL
    -- A label of an enum type whose values a table that held rows keeps, renamed (ALTER TYPE …
    -- RENAME VALUE) or gone: each row that held it now reads another value, or none.
    SELECT format('label %L of enum type %s that %s use(s): %s', l.label, y.v ->> 0,
             (SELECT string_agg(coalesce(present -> u.t ->> 0, u.t), ', ' ORDER BY u.t) FROM jsonb_array_elements_text(y.v -> 1) AS u(t)),
             CASE WHEN l.now IS NULL THEN 'gone, with the values of the rows that held it'
                  ELSE format('renamed to %L, in every row that holds it', l.now) END)
      FROM jsonb_each(enums) AS y(k, v),
           LATERAL (SELECT j.label, (SELECT e.enumlabel FROM pg_enum e WHERE e.oid = j.id::oid AND e.enumtypid = y.k::oid) AS now
                      FROM jsonb_each_text(y.v -> 2) AS j(id, label)) AS l
     WHERE EXISTS (SELECT FROM pg_type WHERE oid = y.k::oid) AND l.now IS DISTINCT FROM l.label
  ) AS dropped;
  lo_now := ${sql.raw(LARGE_OBJECTS)};
  IF lo <> '' AND lo_now <> lo THEN
    unreported := concat_ws('; ', nullif(unreported, ''), nullif(${sql.raw(largeObjectChanges('lo', 'lo_now'))}, ''));
  END IF;
  -- Foreign servers, tables or user mappings changed since notePresence: rows on another server
  -- could have gone through them, unseen. Rolled back here, postgres_fdw's remote transaction too.
  SELECT string_agg(format('%s: %s', n.key, concat_ws(', ', CASE WHEN d.ins > 0 THEN d.ins || ' row(s) added' END,
           CASE WHEN d.upd > 0 THEN d.upd || ' row(s) changed' END, CASE WHEN d.del > 0 THEN d.del || ' row(s) removed' END)),
           '; ' ORDER BY n.key)
    INTO foreign_changed
    FROM jsonb_each(${sql.raw(FOREIGN_CATALOGS)}) AS n(key, value)
    CROSS JOIN LATERAL (SELECT (n.value ->> 0)::bigint - coalesce((noted_foreign -> n.key ->> 0)::bigint, 0) AS ins,
                               (n.value ->> 1)::bigint - coalesce((noted_foreign -> n.key ->> 1)::bigint, 0) AS upd,
                               (n.value ->> 2)::bigint - coalesce((noted_foreign -> n.key ->> 2)::bigint, 0) AS del) AS d
   WHERE d.ins > 0 OR d.upd > 0 OR d.del > 0;
  IF foreign_changed IS NOT NULL THEN
    RAISE EXCEPTION 'Rolling back 005_add_openrouter_integration changed foreign servers, foreign tables or user mappings while it ran, through a trigger, a rule or an event trigger (%): rows on another server can be deleted through them, where no counter of this one sees it. %. postgres_fdw''s transaction on the other server rolled back with it. Changing foreign servers, foreign tables or user mappings during a down is refused: keep 005, or roll back once nothing changes them with the down (find the trigger or event trigger that does).', foreign_changed, ${sql.lit(undone)};
  END IF;
  IF unreported <> '' THEN
    RAISE EXCEPTION 'Rolling back 005_add_openrouter_integration deleted, changed, truncated, rewrote or dropped rows it did not report or back up, through a trigger or rule: %. %. Keep 005, or roll back once nothing deletes or changes rows of other tables with the rows of 005.', unreported, ${sql.lit(undone)};
  END IF;
  -- Last before COMMIT: each backup this rollback made so far holds the rows moved into it. An
  -- event trigger of a statement after the move (ALTER TABLE, DROP TABLE) can empty or drop one,
  -- and TRUNCATE of a table made in the same transaction counts no row and keeps its storage.
  FOR backup, moved IN SELECT key, (value #>> '{}')::numeric[] FROM jsonb_each(held) LOOP
    IF to_regclass(backup) IS NULL THEN
      unkept := unkept || format('%s was dropped', backup);
      CONTINUE;
    END IF;
    -- And it is a permanent ordinary table with no rule: an event trigger of its CREATE TABLE AS
    -- can make it UNLOGGED (a crash, or a failover to a standby, empties it), turn it into a view
    -- (PostgreSQL 15 and older, with CREATE RULE "_RETURN" on the empty table; over a temp table
    -- of this session it vanishes when the session ends), attach it as a partition, or add a rule
    -- that redirects what is written to it, while the rows moved into it still read as there.
    unmade := (SELECT CASE WHEN c.relkind <> 'r' THEN format('%s is no longer a table (%s)', backup,
                              CASE c.relkind WHEN 'v' THEN 'a view' WHEN 'm' THEN 'a materialized view'
                                             WHEN 'p' THEN 'a partitioned table' WHEN 'f' THEN 'a foreign table'
                                             ELSE 'relkind ' || c.relkind::text END)
                       WHEN c.relpersistence = 'u' THEN format('%s was made UNLOGGED (a crash would empty it)', backup)
                       WHEN c.relpersistence <> 'p' THEN format('%s is not a permanent table', backup)
                       WHEN c.relispartition THEN format('%s was attached as a partition of another table', backup)
                       WHEN EXISTS (SELECT FROM pg_rewrite r WHERE r.ev_class = c.oid)
                         THEN format('%s has a rule (%s)', backup, (SELECT string_agg(format('%I', r.rulename), ', ' ORDER BY r.rulename)
                                                                     FROM pg_rewrite r WHERE r.ev_class = c.oid))
                  END FROM pg_class c WHERE c.oid = to_regclass(backup));
    IF unmade IS NOT NULL THEN
      unkept := unkept || unmade;
      CONTINUE;
    END IF;
    EXECUTE format('SELECT ' || ${sql.lit(rowsDigest('%s'))}, backup) INTO holds;
    IF holds[1] <> moved[1] THEN
      unkept := unkept || format('%s holds %s row(s), not the %s moved into it', backup, holds[1], moved[1]);
    ELSIF holds <> moved THEN
      unkept := unkept || format('%s holds other rows than the %s moved into it', backup, moved[1]);
    END IF;
  END LOOP;
  IF cardinality(unkept) > 0 THEN
    RAISE EXCEPTION 'Rolling back 005_add_openrouter_integration stopped: its backups in schema x402_backup do not hold the rows moved into them (a trigger, a rule or an event trigger changed them): %. %. Keep 005, or roll back once nothing writes to, deletes from or drops new tables of schema x402_backup.', array_to_string(unkept, '; '), ${sql.lit(undone)};
  END IF;
END
$unreported$
  `.execute(db)
}

/**
 * Step 1 (`all`) and step 3 (`keys`, those stored since step 1) of `down`: counts what would be
 * lost, with the keys table locked against writes (EXCLUSIVE: reads go on), and refuses with the
 * counts, or, with the opt-in, moves the rows to x402_backup. Each move is one statement
 * (DELETE … RETURNING into the backup), so a row is either backed up or not touched. Before the
 * transaction commits, the server's own count of the rows it deleted and changed, per table,
 * must be what was moved: a trigger or rule of another table that deleted with them rolls it all
 * back, named. The count and a digest of the rows moved into each backup go to the session's
 * `x402.backups_005` (emptied by step 1), which refuseUnreported compares with each backup last.
 * The keys table, emptied here, leaves what notePresence noted before: dropping it loses nothing.
 */
async function keepOrRefuse(db: Kysely<any>, scope: 'all' | 'keys'): Promise<void> {
  const refusal =
    scope === 'all'
      ? 'Nothing was changed. Keep 005, or move the data first'
      : 'They were stored while the rollback ran; it stopped before dropping anything that holds data. Run it again'
  // What its other refusals say was undone: in the last step, that step alone (not "nothing",
  // which the runner reads as a refusal before the first step).
  const undone = scope === 'all' ? 'Nothing was changed (it was rolled back)' : LATER_STEP_UNDONE
  await sql`
DO $keep_or_refuse$
DECLARE
  allowed boolean := coalesce(current_setting('x402.allow_data_loss', true), '') = 'on';
  stamp text := to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYYMMDD"T"HH24MISSMS');
  keys bigint := 0;
  instant bigint := 0;
  configured bigint := 0;
  lost text[] := '{}';
  unreported text;
  counted jsonb;
  storage jsonb;
  -- The count and digest of the rows moved into each backup, which the last check compares.
  held jsonb;
  keys_moved numeric[];
  resources_moved numeric[];
  cleared numeric[];
  -- Large objects, which a trigger of the rows moved below could remove unseen by any counter.
  lo_before text := ${sql.raw(LARGE_OBJECTS)};
  lo_after text;
BEGIN
  IF ${sql.lit(scope === 'all')} THEN
    -- The first step of a rollback: no backup of it yet.
    PERFORM set_config('x402.backups_005', '{}', false);
  END IF;
  held := ${sql.raw(BACKUPS_HELD)};
  -- Row level security would hide rows from the counts and the moves below: an owner under FORCE
  -- ROW LEVEL SECURITY, or a role without BYPASSRLS, would see an empty table and drop it whole.
  SELECT string_agg(t, ', ') INTO unreported
    FROM unnest(ARRAY['public.user_openrouter_integrations', 'public.x402_resources']) AS t
   WHERE to_regclass(t) IS NOT NULL AND row_security_active(t);
  IF unreported <> '' THEN
    RAISE EXCEPTION 'Rolling back 005_add_openrouter_integration cannot see every row of %: row level security filters what role % reads there (FORCE ROW LEVEL SECURITY on a table it owns, or policies for a role without BYPASSRLS), so rows hidden from it would be destroyed unreported. %. Keep 005, or run the down as a role that row level security does not filter: a superuser or a role with BYPASSRLS, such as Supabase''s postgres.', unreported, current_user, ${sql.lit(scope === 'all' ? 'Nothing was changed' : LATER_STEP_UNDONE)};
  END IF;
  IF to_regclass('public.user_openrouter_integrations') IS NOT NULL THEN
    LOCK TABLE public.user_openrouter_integrations IN EXCLUSIVE MODE;
    SELECT count(*) INTO keys FROM public.user_openrouter_integrations;
  END IF;
  IF ${sql.lit(scope === 'all')} AND EXISTS (SELECT FROM pg_attribute WHERE attrelid = 'public.x402_resources'::regclass
                      AND attname = 'openrouter_config' AND NOT attisdropped) THEN
    SELECT count(*) FILTER (WHERE resource_type = 'openrouter_instant'),
           count(*) FILTER (WHERE resource_type <> 'openrouter_instant'
                              AND (openrouter_model_id IS NOT NULL OR openrouter_config IS NOT NULL))
      INTO instant, configured FROM public.x402_resources;
  END IF;
  IF keys > 0 THEN
    lost := lost || format('user_openrouter_integrations (users'' stored OpenRouter keys): %s', keys);
  END IF;
  IF instant > 0 THEN
    lost := lost || format('x402_resources of type ''openrouter_instant'' (the restored resource_type check rejects them): %s', instant);
  END IF;
  IF configured > 0 THEN
    lost := lost || format('other x402_resources with openrouter_model_id or openrouter_config set: %s', configured);
  END IF;
  IF cardinality(lost) = 0 THEN
    PERFORM set_config('x402.watch_005', ${sql.raw(WATCHED_TABLES)}::text, true);
    PERFORM set_config('x402.watch_005_lo', ${sql.raw(LARGE_OBJECTS)}, true);
    RETURN;
  END IF;
  IF NOT allowed THEN
    RAISE EXCEPTION 'Rolling back 005_add_openrouter_integration would destroy data: %. %; to roll back anyway, run npm run migrate:down -- --allow-data-loss (or set MIGRATION_ALLOW_DATA_LOSS=true; in SQL, SET x402.allow_data_loss = on): the rows are then moved to schema x402_backup before anything is dropped.', array_to_string(lost, '; '), ${sql.lit(refusal)};
  END IF;
  counted := (SELECT jsonb_object_agg(relid, jsonb_build_array(n_tup_del, n_tup_upd)) FROM pg_stat_xact_user_tables);
  storage := ${sql.raw(WATCHED_TABLES)};
  CREATE SCHEMA IF NOT EXISTS x402_backup;
  IF keys > 0 THEN
    EXECUTE format('CREATE TABLE x402_backup.%I AS TABLE public.user_openrouter_integrations WITH NO DATA',
                   '005_user_openrouter_integrations_' || stamp);
    EXECUTE format('WITH gone AS (DELETE FROM public.user_openrouter_integrations RETURNING *), '
                   'kept AS (INSERT INTO x402_backup.%I SELECT * FROM gone) SELECT ' || ${sql.lit(rowsDigest('gone'))},
                   '005_user_openrouter_integrations_' || stamp) INTO keys_moved;
    held := held || jsonb_build_object(format('x402_backup.%I', '005_user_openrouter_integrations_' || stamp), keys_moved::text);
  END IF;
  IF instant + configured > 0 THEN
    EXECUTE format('CREATE TABLE x402_backup.%I AS TABLE public.x402_resources WITH NO DATA', '005_x402_resources_' || stamp);
    EXECUTE format('WITH gone AS (DELETE FROM public.x402_resources WHERE resource_type = ''openrouter_instant'' RETURNING *), '
                   'kept AS (INSERT INTO x402_backup.%I SELECT * FROM gone) SELECT ' || ${sql.lit(rowsDigest('gone'))},
                   '005_x402_resources_' || stamp) INTO resources_moved;
    EXECUTE format('WITH old AS (SELECT * FROM public.x402_resources WHERE openrouter_model_id IS NOT NULL OR openrouter_config IS NOT NULL FOR UPDATE), '
                   'cleared AS (UPDATE public.x402_resources r SET openrouter_model_id = NULL, openrouter_config = NULL FROM old WHERE r.id = old.id), '
                   'kept AS (INSERT INTO x402_backup.%I SELECT * FROM old) SELECT ' || ${sql.lit(rowsDigest('old'))},
                   '005_x402_resources_' || stamp) INTO cleared;
    resources_moved := ARRAY[resources_moved[1] + cleared[1], resources_moved[2] + cleared[2], resources_moved[3] + cleared[3]];
    held := held || jsonb_build_object(format('x402_backup.%I', '005_x402_resources_' || stamp), resources_moved::text);
  END IF;
  -- The last check of each transaction of the rollback (refuseUnreported) compares every backup
  -- made so far with what was moved into it: an event trigger of any later statement can empty,
  -- fill or drop a new table, or a trigger of it swallow or rewrite the inserts, and the rows
  -- would be deleted here and reported as backed up.
  PERFORM set_config('x402.backups_005', held::text, false);
  -- What the server counted in this block against what was moved: instant rows deleted,
  -- configured ones changed. Its counters also hold earlier statements of the session that it
  -- has not flushed yet, hence the difference.
  SELECT string_agg(format('%I.%I: %s row(s) deleted, %s changed', t.schemaname, t.relname, t.deleted, t.changed), '; ')
    INTO unreported
    FROM (SELECT schemaname, relname, relid,
                 n_tup_del - (counted -> relid::text ->> 0)::bigint AS deleted,
                 n_tup_upd - (counted -> relid::text ->> 1)::bigint AS changed
          FROM pg_stat_xact_user_tables WHERE counted ? relid::text) AS t
   WHERE (t.deleted, t.changed) IS DISTINCT FROM (
           CASE t.relid WHEN 'public.user_openrouter_integrations'::regclass THEN keys
                        WHEN 'public.x402_resources'::regclass THEN instant ELSE 0 END,
           CASE t.relid WHEN 'public.x402_resources'::regclass THEN configured ELSE 0 END);
  -- TRUNCATE and a rewrite count no row: a table whose storage the moves replaced was destroyed.
  SELECT concat_ws('; ', unreported, string_agg(format('%I.%I: truncated or rewritten', n.nspname, c.relname), '; '))
    INTO unreported
    FROM jsonb_each(storage) AS w(k, v) JOIN pg_class c ON c.oid = w.k::oid JOIN pg_namespace n ON n.oid = c.relnamespace
   WHERE c.relfilenode::text <> w.v ->> 2;
  lo_after := ${sql.raw(LARGE_OBJECTS)};
  IF lo_after <> lo_before THEN
    unreported := concat_ws('; ', nullif(unreported, ''), nullif(${sql.raw(largeObjectChanges('lo_before', 'lo_after'))}, ''));
  END IF;
  IF unreported <> '' THEN
    RAISE EXCEPTION 'Rolling back 005_add_openrouter_integration deleted, changed, truncated or rewrote rows it did not report or back up, through a trigger or rule: %. %. Keep 005, or roll back once nothing deletes or changes rows of other tables with the rows of 005.', unreported, ${sql.lit(undone)};
  END IF;
  PERFORM set_config('x402.watch_005', ${sql.raw(WATCHED_TABLES)}::text, true);
  PERFORM set_config('x402.watch_005_lo', ${sql.raw(LARGE_OBJECTS)}, true);
  IF keys > 0 THEN
    -- Emptied here, under a lock that keeps new keys out: the drop of the last step loses nothing.
    PERFORM set_config('x402.present_005', (coalesce(nullif(current_setting('x402.present_005', true), ''), '{}')::jsonb
                                            - 'public.user_openrouter_integrations'::regclass::oid::text)::text, true);
  END IF;
END
$keep_or_refuse$
  `.execute(db)
}
