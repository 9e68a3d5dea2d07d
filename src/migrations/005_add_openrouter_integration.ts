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
    openrouter_config: 'Settings of an openrouter_instant resource: {modelId, systemPrompt, params: {temperature, maxTokens, topP, ...}}.',
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

/** Step 3. A killed concurrent build leaves an INVALID index behind; it is built again. */
async function buildIndexConcurrently(db: Kysely<any>): Promise<void> {
  const { rows } = await sql<{ valid: boolean }>`
    SELECT indisvalid AS valid FROM pg_index
    WHERE indexrelid = to_regclass('public.idx_x402_resources_openrouter_model')
  `.execute(db)
  if (rows[0]?.valid === true) return
  if (rows[0]) await sql`DROP INDEX CONCURRENTLY IF EXISTS idx_x402_resources_openrouter_model`.execute(db)
  await sql`
    CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_x402_resources_openrouter_model ON x402_resources (openrouter_model_id)
    WHERE openrouter_model_id IS NOT NULL
  `.execute(db)
}

/**
 * Whether step 1 committed before (a crash stopped the run after it). All of its marks are
 * asked for, so that a table made by hand in its way is not taken for it: step 1 then runs and
 * fails on that table, with nothing changed.
 */
async function catalogChangesDone(db: Kysely<any>): Promise<boolean> {
  const { rows } = await sql<{ done: boolean }>`
    SELECT to_regclass('public.user_openrouter_integrations') IS NOT NULL
       AND EXISTS (SELECT FROM pg_constraint WHERE conrelid = 'public.x402_resources'::regclass
                   AND conname = 'x402_resources_openrouter_model_id_fkey')
       AND EXISTS (SELECT FROM pg_constraint WHERE conrelid = 'public.x402_resources'::regclass
                   AND conname = 'x402_resources_resource_type_check'
                   AND pg_get_constraintdef(oid) LIKE '%openrouter_instant%') AS done
  `.execute(db)
  return rows[0]!.done
}

async function exists(db: Kysely<any>, relation: string): Promise<boolean> {
  const { rows } = await sql<{ found: boolean }>`SELECT to_regclass(${sql.lit(relation)}) IS NOT NULL AS found`.execute(db)
  return rows[0]!.found
}

/**
 * The reverse of `up`, with the same lock discipline, and without losing data.
 *
 * Before it changes anything it counts what a rollback would destroy: stored keys in
 * user_openrouter_integrations, resources of type 'openrouter_instant' (the restored CHECK
 * rejects them), and resources with openrouter_model_id or openrouter_config set. If there is
 * any, it refuses with the counts, unless the run opted in (the runner sets
 * `x402.allow_data_loss`, from `migrate:down -- --allow-data-loss` or
 * MIGRATION_ALLOW_DATA_LOSS=true). With the opt-in, the rows are first copied to tables in
 * schema x402_backup, named after this migration and the time, from where they can be restored.
 *
 * Steps: (1) one short transaction that backs up and removes the data and puts the five-type
 * CHECK back NOT VALID; (2) VALIDATE it; (3) DROP INDEX CONCURRENTLY; (4) one short
 * transaction of catalog-only drops. Each step is safe to run again after a crash.
 */
export async function down(db: Kysely<any>): Promise<void> {
  const loss = await dataAtRisk(db)
  const allowed = await dataLossAllowed(db)
  if (loss.length > 0 && !allowed) {
    throw new Error(
      `Rolling back 005_add_openrouter_integration would destroy data: ${loss.map(({ what, rows }) => `${what}: ${rows}`).join('; ')}. ` +
        'Nothing was changed. Keep 005, or move the data first; to roll back anyway, run `npm run migrate:down -- --allow-data-loss` ' +
        '(or set MIGRATION_ALLOW_DATA_LOSS=true): the rows are then copied to schema x402_backup before they are dropped.',
    )
  }

  await db.transaction().execute(async (trx) => {
    if (loss.length > 0) await backUpAndRemoveData(trx)
    await swapResourceTypeCheck(trx, RESOURCE_TYPES_BEFORE)
  })
  await sql`SET statement_timeout = 0`.execute(db)
  await sql`ALTER TABLE x402_resources VALIDATE CONSTRAINT x402_resources_resource_type_check`.execute(db)
  await sql`DROP INDEX CONCURRENTLY IF EXISTS idx_x402_resources_openrouter_model`.execute(db)

  await db.transaction().execute(async (trx) => {
    await sql`DROP TABLE IF EXISTS user_openrouter_integrations`.execute(trx)
    await sql`DROP FUNCTION IF EXISTS update_openrouter_integration_updated_at()`.execute(trx)
    // Last, as in up: ACCESS EXCLUSIVE on x402_resources for as short a time as it can.
    await sql`ALTER TABLE x402_resources DROP COLUMN IF EXISTS openrouter_config, DROP COLUMN IF EXISTS openrouter_model_id`.execute(trx)
  })
}

interface DataAtRisk {
  what: string
  rows: number
}

async function dataAtRisk(db: Kysely<any>): Promise<DataAtRisk[]> {
  if (!(await exists(db, 'public.user_openrouter_integrations'))) return []
  const { rows } = await sql<{ keys: string; instant: string; configured: string }>`
    SELECT
      (SELECT count(*) FROM user_openrouter_integrations) AS keys,
      (SELECT count(*) FROM x402_resources WHERE resource_type = 'openrouter_instant') AS instant,
      (SELECT count(*) FROM x402_resources
        WHERE resource_type <> 'openrouter_instant'
          AND (openrouter_model_id IS NOT NULL OR openrouter_config IS NOT NULL)) AS configured
  `.execute(db)
  const counts = rows[0]!
  return [
    { what: "user_openrouter_integrations (users' stored OpenRouter keys)", rows: Number(counts.keys) },
    { what: "x402_resources of type 'openrouter_instant' (the restored resource_type check rejects them)", rows: Number(counts.instant) },
    { what: 'other x402_resources with openrouter_model_id or openrouter_config set', rows: Number(counts.configured) },
  ].filter(({ rows }) => rows > 0)
}

async function dataLossAllowed(db: Kysely<any>): Promise<boolean> {
  const { rows } = await sql<{ value: string | null }>`SELECT current_setting('x402.allow_data_loss', true) AS value`.execute(db)
  return rows[0]!.value === 'on'
}

/**
 * Copies what the rollback drops into x402_backup (not `public`, so the API does not expose
 * it), then removes it: the stored keys, the openrouter_instant resources (whole rows), and the
 * two columns' values of every resource that has them.
 */
async function backUpAndRemoveData(db: Kysely<any>): Promise<void> {
  const { rows } = await sql<{ stamp: string }>`SELECT to_char(now() AT TIME ZONE 'UTC', 'YYYYMMDD"T"HH24MISS') AS stamp`.execute(db)
  const backup = (table: string) => sql.id('x402_backup', `005_${table}_${rows[0]!.stamp}`)
  await sql`CREATE SCHEMA IF NOT EXISTS x402_backup`.execute(db)
  await sql`CREATE TABLE ${backup('user_openrouter_integrations')} AS TABLE user_openrouter_integrations`.execute(db)
  await sql`
    CREATE TABLE ${backup('x402_resources')} AS
    SELECT * FROM x402_resources
    WHERE resource_type = 'openrouter_instant' OR openrouter_model_id IS NOT NULL OR openrouter_config IS NOT NULL
  `.execute(db)
  await sql`DELETE FROM user_openrouter_integrations`.execute(db)
  await sql`DELETE FROM x402_resources WHERE resource_type = 'openrouter_instant'`.execute(db)
  await sql`
    UPDATE x402_resources SET openrouter_model_id = NULL, openrouter_config = NULL
    WHERE openrouter_model_id IS NOT NULL OR openrouter_config IS NOT NULL
  `.execute(db)
}
