import { type Kysely, sql } from 'kysely'

/**
 * Brings a database the module built to production's names and shape, so that production, which
 * got 005's objects by hand under other names, is adopted here as it is, and every later
 * migration acts on the names the app queries:
 * - user_openrouter_integrations becomes x402_user_openrouter_integrations, with its primary and
 *   foreign key named as production's CREATE TABLE named them. Its index, trigger, trigger
 *   function and policies keep the plan's names, as production has them.
 * - ai_models becomes x402_openrouter_models in production's shape: the columns the backend's
 *   sync fills, `modality` checked by check_modality_valid, the three indexes, is_active,
 *   created_at and updated_at nullable, and RLS off (008 turns it on). OpenRouter's pricing object
 *   moves from `pricing jsonb` into production's four text columns.
 *
 * Nothing is lost either way. `up` refuses, naming the models, where a pricing object would not
 * come back unchanged from the four columns, or where such a column that the catalog had already
 * holds another value than the object; `down` builds the object again from them, and
 * refuses where it cannot put NOT NULL back. Dropping the columns production added is guarded by
 * the runner, as every transactional down is: it refuses while they hold values, or backs the
 * catalog up first with the data-loss opt-in.
 *
 * Catalog changes on the two small tables, in one short transaction of its own. It takes no lock
 * on x402_resources that a write waits for (its COMMENT takes SHARE UPDATE EXCLUSIVE). It does
 * take the keys table and then the catalog, which app transactions take too, in either order:
 * while it waits for one, writes that need it queue behind it, for lock_timeout at most; and an
 * app transaction that holds the catalog (a resource written with a model) and then stores a key
 * deadlocks with it. PostgreSQL then cancels one of the two, and the runner tries 006 again, as
 * after lock_timeout.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await refuseCodeNaming(db, 'up')
  await sql`
    COMMENT ON COLUMN x402_resources.openrouter_model_id IS
      'Model of an openrouter_instant resource, from x402_openrouter_models; set to null when the model leaves the catalog.'
  `.execute(db)

  // The app's code switches to these names in the same release; no instance of it queries the
  // old ones on production, which has never had them.
  await sql`
    -- squawk-ignore renaming-table
    ALTER TABLE user_openrouter_integrations RENAME TO x402_user_openrouter_integrations
  `.execute(db)
  await sql`ALTER TABLE x402_user_openrouter_integrations RENAME CONSTRAINT user_openrouter_integrations_pkey TO x402_user_openrouter_integrations_pkey`.execute(db)
  await sql`ALTER TABLE x402_user_openrouter_integrations RENAME CONSTRAINT user_openrouter_integrations_user_id_fkey TO x402_user_openrouter_integrations_user_id_fkey`.execute(db)

  await refuseUnfitPricing(db)
  await sql`
    -- squawk-ignore renaming-table
    ALTER TABLE ai_models RENAME TO x402_openrouter_models
  `.execute(db)
  await sql`ALTER TABLE x402_openrouter_models RENAME CONSTRAINT ai_models_pkey TO x402_openrouter_models_pkey`.execute(db)
  await sql`ALTER TABLE x402_openrouter_models RENAME CONSTRAINT ai_models_openrouter_id_key TO x402_openrouter_models_openrouter_id_key`.execute(db)
  // The catalog holds a few hundred rows that only the backend's sync writes: the scan of the
  // CHECK takes milliseconds, under the migration's lock_timeout. Production's types and
  // nullability (integer, and NOT NULL dropped where production has none). A column that a
  // database adopted before 006 has already (its own description, say) is kept as it is, and
  // migrate:check reports it if it is not production's.
  await sql`
    ALTER TABLE x402_openrouter_models
      ADD COLUMN IF NOT EXISTS memeputer_name text,
      ADD COLUMN IF NOT EXISTS description text,
      ADD COLUMN IF NOT EXISTS modality text NOT NULL DEFAULT 'text',
      -- squawk-ignore prefer-bigint-over-int
      ADD COLUMN IF NOT EXISTS max_tokens integer,
      ADD COLUMN IF NOT EXISTS pricing_prompt text,
      ADD COLUMN IF NOT EXISTS pricing_completion text,
      ADD COLUMN IF NOT EXISTS pricing_image text,
      ADD COLUMN IF NOT EXISTS pricing_web_search text,
      ADD COLUMN IF NOT EXISTS input_cost_per_million numeric,
      ADD COLUMN IF NOT EXISTS output_cost_per_million numeric,
      ADD COLUMN IF NOT EXISTS capabilities jsonb,
      ADD COLUMN IF NOT EXISTS vision_supported boolean DEFAULT false,
      ADD COLUMN IF NOT EXISTS web_search_supported boolean DEFAULT false,
      ADD COLUMN IF NOT EXISTS tool_calling_supported boolean DEFAULT false,
      ADD COLUMN IF NOT EXISTS is_curated boolean NOT NULL DEFAULT false,
      ADD COLUMN IF NOT EXISTS last_synced_at timestamptz,
      -- squawk-ignore ban-drop-not-null
      ALTER COLUMN is_active DROP NOT NULL,
      -- squawk-ignore ban-drop-not-null
      ALTER COLUMN created_at DROP NOT NULL,
      -- squawk-ignore ban-drop-not-null
      ALTER COLUMN updated_at DROP NOT NULL,
      -- squawk-ignore constraint-missing-not-valid
      ADD CONSTRAINT check_modality_valid
        CHECK (modality IN ('text', 'image', 'video', 'audio', 'embedding', 'multimodal'))
  `.execute(db)
  // A value such a column holds already is kept: the object fills only what it has a key for,
  // and a key whose value differs from the column's is refused, naming the models.
  await refuseConflictingPricing(db)
  await sql`
    UPDATE x402_openrouter_models
    SET pricing_prompt = coalesce(pricing ->> 'prompt', pricing_prompt),
        pricing_completion = coalesce(pricing ->> 'completion', pricing_completion),
        pricing_image = coalesce(pricing ->> 'image', pricing_image),
        pricing_web_search = coalesce(pricing ->> 'web_search', pricing_web_search)
    WHERE pricing IS NOT NULL
  `.execute(db)
  // Every value is in the four columns now, as refuseUnfitPricing made sure.
  await sql`
    -- squawk-ignore ban-drop-column
    ALTER TABLE x402_openrouter_models DROP COLUMN pricing
  `.execute(db)
  // The same few hundred rows: each index builds in milliseconds inside this transaction.
  await sql`
    -- squawk-ignore require-concurrent-index-creation
    CREATE INDEX idx_x402_openrouter_models_is_active ON x402_openrouter_models (is_active)
  `.execute(db)
  await sql`
    -- squawk-ignore require-concurrent-index-creation
    CREATE INDEX idx_x402_openrouter_models_modality ON x402_openrouter_models (modality)
  `.execute(db)
  await sql`
    -- squawk-ignore require-concurrent-index-creation
    CREATE INDEX idx_x402_openrouter_models_is_curated ON x402_openrouter_models (is_curated) WHERE is_curated = true
  `.execute(db)

  await sql`
    COMMENT ON TABLE x402_openrouter_models IS
      'OpenRouter model catalog, synced by the backend (service_role) from OpenRouter''s model list; x402_resources.openrouter_model_id points here.'
  `.execute(db)
  await renameAccepted(db, 'up')
  await commentOnColumns(db, {
    openrouter_id: "OpenRouter's model identifier, such as openai/gpt-4o.",
    modality: 'What the model produces: text, image, video, audio, embedding or multimodal.',
    pricing_prompt: "OpenRouter's pricing.prompt: USD per prompt token, as the text OpenRouter sends.",
    pricing_completion: "OpenRouter's pricing.completion: USD per completion token, as text.",
    pricing_image: "OpenRouter's pricing.image: USD per input image, as text.",
    pricing_web_search: "OpenRouter's pricing.web_search: USD per web search, as text.",
    is_curated: "Shown in the app's curated list of models.",
  })
}

/**
 * Back to the plan's names and ai_models' shape: `pricing` built again from the four columns,
 * NOT NULL put back on is_active, created_at and updated_at (refused, naming the models, where a
 * row has none), production's columns, CHECK and indexes dropped.
 */
export async function down(db: Kysely<any>): Promise<void> {
  await refuseCodeNaming(db, 'down')
  await sql`
DO $not_null$
DECLARE
  found bigint;
  named text;
BEGIN
  SELECT count(*), string_agg(openrouter_id, ', ' ORDER BY openrouter_id) FILTER (WHERE n <= 20)
                     || CASE WHEN count(*) > 20 THEN format(' and %s more', count(*) - 20) ELSE '' END
    INTO found, named
  FROM (SELECT openrouter_id, row_number() OVER (ORDER BY openrouter_id) AS n
        FROM public.x402_openrouter_models
        WHERE is_active IS NULL OR created_at IS NULL OR updated_at IS NULL) AS empty;
  IF found > 0 THEN
    RAISE EXCEPTION 'Rolling back 006_rename_to_production_names puts NOT NULL back on x402_openrouter_models.is_active, created_at and updated_at, and % model(s) have no value there: %. Nothing was changed. Keep 006, or give those models a value first (is_active as the sync decides; created_at and updated_at the time they were synced), then roll back.',
      found, named;
  END IF;
END
$not_null$
  `.execute(db)

  await sql`
    COMMENT ON COLUMN x402_resources.openrouter_model_id IS
      'Model of an openrouter_instant resource, from ai_models; set to null when the model leaves the catalog.'
  `.execute(db)

  await sql`ALTER TABLE x402_openrouter_models ADD COLUMN pricing jsonb`.execute(db)
  await sql`
    UPDATE x402_openrouter_models SET pricing = ${pricingObject('pricing_prompt', 'pricing_completion', 'pricing_image', 'pricing_web_search')}
    WHERE num_nonnulls(pricing_prompt, pricing_completion, pricing_image, pricing_web_search) > 0
  `.execute(db)
  // The catalog's few hundred rows, in this transaction: as up built them.
  await sql`
    -- squawk-ignore require-concurrent-index-deletion
    DROP INDEX idx_x402_openrouter_models_is_curated
  `.execute(db)
  await sql`
    -- squawk-ignore require-concurrent-index-deletion
    DROP INDEX idx_x402_openrouter_models_modality
  `.execute(db)
  await sql`
    -- squawk-ignore require-concurrent-index-deletion
    DROP INDEX idx_x402_openrouter_models_is_active
  `.execute(db)
  await sql`
    ALTER TABLE x402_openrouter_models
      DROP CONSTRAINT check_modality_valid,
      DROP COLUMN memeputer_name,
      DROP COLUMN description,
      DROP COLUMN modality,
      DROP COLUMN max_tokens,
      DROP COLUMN pricing_prompt,
      DROP COLUMN pricing_completion,
      DROP COLUMN pricing_image,
      DROP COLUMN pricing_web_search,
      DROP COLUMN input_cost_per_million,
      DROP COLUMN output_cost_per_million,
      DROP COLUMN capabilities,
      DROP COLUMN vision_supported,
      DROP COLUMN web_search_supported,
      DROP COLUMN tool_calling_supported,
      DROP COLUMN is_curated,
      DROP COLUMN last_synced_at,
      -- squawk-ignore adding-not-nullable-field
      ALTER COLUMN is_active SET NOT NULL,
      -- squawk-ignore adding-not-nullable-field
      ALTER COLUMN created_at SET NOT NULL,
      -- squawk-ignore adding-not-nullable-field
      ALTER COLUMN updated_at SET NOT NULL
  `.execute(db)
  await sql`COMMENT ON TABLE x402_openrouter_models IS NULL`.execute(db)
  await sql`COMMENT ON COLUMN x402_openrouter_models.openrouter_id IS NULL`.execute(db)
  await sql`ALTER TABLE x402_openrouter_models RENAME CONSTRAINT x402_openrouter_models_openrouter_id_key TO ai_models_openrouter_id_key`.execute(db)
  await sql`ALTER TABLE x402_openrouter_models RENAME CONSTRAINT x402_openrouter_models_pkey TO ai_models_pkey`.execute(db)
  await sql`
    -- squawk-ignore renaming-table
    ALTER TABLE x402_openrouter_models RENAME TO ai_models
  `.execute(db)

  await sql`ALTER TABLE x402_user_openrouter_integrations RENAME CONSTRAINT x402_user_openrouter_integrations_user_id_fkey TO user_openrouter_integrations_user_id_fkey`.execute(db)
  await sql`ALTER TABLE x402_user_openrouter_integrations RENAME CONSTRAINT x402_user_openrouter_integrations_pkey TO user_openrouter_integrations_pkey`.execute(db)
  await sql`
    -- squawk-ignore renaming-table
    ALTER TABLE x402_user_openrouter_integrations RENAME TO user_openrouter_integrations
  `.execute(db)
  await renameAccepted(db, 'down')
}

/** The tables 006 renames, plan's name first. */
const RENAMED_TABLES: ReadonlyArray<readonly [string, string]> = [
  ['ai_models', 'x402_openrouter_models'],
  ['user_openrouter_integrations', 'x402_user_openrouter_integrations'],
]

/**
 * Refuses, before anything changes, where a function's body names a table by the name that
 * `direction` takes away: a rename follows into views, policies, triggers and SQL-standard
 * bodies (BEGIN ATOMIC), not into a body kept as text (plpgsql, a quoted SQL body), which would
 * fail once 006 is done or undone (production's soft_delete_user_tx names
 * x402_user_openrouter_integrations).
 */
async function refuseCodeNaming(db: Kysely<any>, direction: 'up' | 'down'): Promise<void> {
  const taken = RENAMED_TABLES.map(([plan, production]) => (direction === 'up' ? plan : production))
  const given = RENAMED_TABLES.map(([plan, production]) => (direction === 'up' ? production : plan))
  const names = sql.raw(`ARRAY[${taken.map((name) => `'${name}'`).join(', ')}]`)
  const what =
    direction === 'up'
      ? `Applying 006_rename_to_production_names renames ${taken.join(' and ')} to ${given.join(' and ')}`
      : `Rolling back 006_rename_to_production_names renames ${taken.join(' and ')} back to ${given.join(' and ')}`
  const advice =
    direction === 'up'
      ? "Make each function use production's names (CREATE OR REPLACE FUNCTION) as the module is applied, or set it aside and put it back after."
      : "Keep 006 while the app's own code uses production's names; or set each function aside (CREATE OR REPLACE FUNCTION, keeping its definition from pg_get_functiondef) and put it back once 006 is applied again."
  await sql`
DO $code$
DECLARE
  named text;
BEGIN
  SELECT string_agg(format('%I.%I(%s) (names %s)', n.nspname, p.proname, oidvectortypes(p.proargtypes), m.names), '; '
                    ORDER BY n.nspname, p.proname)
    INTO named
  FROM pg_proc p
  JOIN pg_namespace n ON n.oid = p.pronamespace
  CROSS JOIN LATERAL (SELECT string_agg(t.name, ', ' ORDER BY t.name) AS names
                        FROM unnest(${names}) AS t(name)
                       -- Unqualified or in public (spaces around the dot allowed): unquoted in any case, or
                       -- quoted as written. Another schema's table, or a quoted name in capitals, is another.
                       -- A dollar sign beside it counts as a boundary (the quote of dynamic SQL), at the
                       -- cost of refusing a name that merely contains it.
                       WHERE p.prosrc ~* ('(^|[^a-z0-9_."])((public|"public")[[:space:]]*[.][[:space:]]*)?' || t.name || '($|[^a-z0-9_"])')
                          OR p.prosrc ~ ('(^|[^A-Za-z0-9_."])(([Pp][Uu][Bb][Ll][Ii][Cc]|"public")[[:space:]]*[.][[:space:]]*)?"' || t.name || '"')) AS m
  WHERE m.names IS NOT NULL
    AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_'
    AND p.prolang NOT IN (SELECT l.oid FROM pg_language l WHERE l.lanname IN ('c', 'internal'));
  IF named IS NOT NULL THEN
    RAISE EXCEPTION '%', ${sql.lit(what)} || ', and these functions name them in a body kept as text, which a rename does not follow (they would fail): ' || named || ${sql.lit(`. Nothing was changed. ${advice}`)};
  END IF;
END
$code$
  `.execute(db)
}

/** The constraints (and their indexes) 006 renames with them. */
const RENAMED_CONSTRAINTS: ReadonlyArray<readonly [string, string]> = [
  ['ai_models_pkey', 'x402_openrouter_models_pkey'],
  ['ai_models_openrouter_id_key', 'x402_openrouter_models_openrouter_id_key'],
  ['user_openrouter_integrations_pkey', 'x402_user_openrouter_integrations_pkey'],
  ['user_openrouter_integrations_user_id_fkey', 'x402_user_openrouter_integrations_user_id_fkey'],
]

/**
 * What a database adopted before 006 has more than the module (its own columns, policies, RLS on
 * the catalog) is recorded by adoption in x402_migrations.accepted_schema_difference, keyed
 * `<category> <table>` or `<category> <table>.<name>`. The records follow the objects to their
 * new names (back again in `down`), so that migrate:check still holds the database to them.
 */
async function renameAccepted(db: Kysely<any>, direction: 'up' | 'down'): Promise<void> {
  const way = ([plan, production]: readonly [string, string]) => (direction === 'up' ? [plan, production] : [production, plan])
  const tables = RENAMED_TABLES.map(way)
  const pairs = [...tables, ...RENAMED_CONSTRAINTS.map(way)]
  const names = sql.raw(`(VALUES ${pairs.map(([from, to]) => `('${from}', '${to}')`).join(', ')}) AS n(old_name, new_name)`)
  await sql`
DO $accepted$
DECLARE
  changed bigint;
  rewritten bigint := 0;
  own jsonb;
BEGIN
  IF to_regclass('x402_migrations.accepted_schema_difference') IS NULL THEN
    RETURN;
  END IF;
  UPDATE x402_migrations.accepted_schema_difference AS a
  SET key = k.category || ' ' || coalesce((SELECT n.new_name FROM ${names} WHERE n.old_name = k.table_name), k.table_name)
            || CASE WHEN k.object_name IS NULL THEN ''
                    ELSE '.' || coalesce((SELECT n.new_name FROM ${names} WHERE n.old_name = k.object_name), k.object_name) END
  FROM (SELECT key, split_part(key, ' ', 1) AS category,
               split_part(substr(key, strpos(key, ' ') + 1), '.', 1) AS table_name,
               nullif(substr(substr(key, strpos(key, ' ') + 1), strpos(substr(key, strpos(key, ' ') + 1), '.') + 1),
                      substr(key, strpos(key, ' ') + 1)) AS object_name
        FROM x402_migrations.accepted_schema_difference
        WHERE split_part(key, ' ', 1) <> 'functions') AS k
  WHERE a.key = k.key
    AND split_part(substr(a.key, strpos(a.key, ' ') + 1), '.', 1) IN (SELECT n.old_name FROM ${names});
  GET DIAGNOSTICS changed = ROW_COUNT;
  rewritten := rewritten + changed;
  -- An index's or trigger's definition names its table, as the server deparses it. Only the
  -- records that name a renamed table: a row rewritten unchanged still counts as changed.
  UPDATE x402_migrations.accepted_schema_difference
  SET live = replace(replace(live::text, ${sql.lit(` ON public.${tables[0]![0]} `)}, ${sql.lit(` ON public.${tables[0]![1]} `)}),
                     ${sql.lit(` ON public.${tables[1]![0]} `)}, ${sql.lit(` ON public.${tables[1]![1]} `)})::jsonb
  WHERE strpos(live::text, ${sql.lit(` ON public.${tables[0]![0]} `)}) > 0
     OR strpos(live::text, ${sql.lit(` ON public.${tables[1]![0]} `)}) > 0;
  GET DIAGNOSTICS changed = ROW_COUNT;
  rewritten := rewritten + changed;
  -- The module's own bookkeeping, which the check of what a down changed counts apart
  -- (x402.down_own_updates: rows changed per table of x402_migrations, by the down's own statements).
  own := coalesce(nullif(current_setting('x402.down_own_updates', true), ''), '{}')::jsonb;
  PERFORM set_config('x402.down_own_updates', jsonb_set(own,
    ARRAY['x402_migrations.accepted_schema_difference'::regclass::oid::text],
    to_jsonb(coalesce((own ->> 'x402_migrations.accepted_schema_difference'::regclass::oid::text)::bigint, 0) + rewritten))::text, true);
END
$accepted$
  `.execute(db)
}

/**
 * SQL: OpenRouter's pricing object as `down` builds it from the four text columns (or their
 * values in `up`): the keys that have a value, as strings; NULL where none has.
 */
function pricingObject(prompt: string, completion: string, image: string, webSearch: string) {
  const [p, c, i, w] = [prompt, completion, image, webSearch].map((expression) => sql.raw(expression))
  return sql`CASE WHEN num_nonnulls(${p}, ${c}, ${i}, ${w}) = 0 THEN NULL
                  ELSE jsonb_strip_nulls(jsonb_build_object('prompt', ${p}, 'completion', ${c}, 'image', ${i}, 'web_search', ${w})) END`
}

/**
 * Refuses, before anything changes, where `up` would lose part of a model's pricing: any
 * pricing object that the four text columns would not give back unchanged (another key, a value
 * that is not a string, an empty object).
 */
async function refuseUnfitPricing(db: Kysely<any>): Promise<void> {
  const restored = pricingObject("pricing ->> 'prompt'", "pricing ->> 'completion'", "pricing ->> 'image'", "pricing ->> 'web_search'")
  await sql`
DO $pricing$
DECLARE
  found bigint;
  named text;
BEGIN
  SELECT count(*), string_agg(format('%s (%s)', openrouter_id, pricing::text), '; ' ORDER BY openrouter_id) FILTER (WHERE n <= 20)
                     || CASE WHEN count(*) > 20 THEN format('; and %s more', count(*) - 20) ELSE '' END
    INTO found, named
  FROM (SELECT openrouter_id, pricing, row_number() OVER (ORDER BY openrouter_id) AS n
        FROM public.ai_models WHERE pricing IS DISTINCT FROM ${restored}) AS unfit;
  IF found > 0 THEN
    RAISE EXCEPTION 'Migration 006_rename_to_production_names moves ai_models.pricing into the text columns pricing_prompt, pricing_completion, pricing_image and pricing_web_search, as production''s x402_openrouter_models has them, and the pricing of % model(s) would not come back unchanged from them: %. Nothing was changed. Only string values under the keys prompt, completion, image and web_search fit. Save the other values where you want to keep them, take them out of pricing, then run the migrations again; until then the database stays at 005.',
      found, named;
  END IF;
END
$pricing$
  `.execute(db)
}

/**
 * Refuses where a pricing column that the catalog had before 006 (a database adopted with
 * production's columns) is not text, or holds another value than the pricing object's key:
 * either would be lost. The transaction rolls back, so nothing changes.
 */
async function refuseConflictingPricing(db: Kysely<any>): Promise<void> {
  await sql`
DO $conflicts$
DECLARE
  found bigint;
  named text;
BEGIN
  SELECT string_agg(CASE WHEN a.attgenerated <> '' THEN format('%I is a generated column', a.attname)
                          ELSE format('%I is of type %s', a.attname, format_type(a.atttypid, a.atttypmod)) END,
                     ', ' ORDER BY a.attname)
    INTO named
  FROM pg_attribute a
  WHERE a.attrelid = 'public.x402_openrouter_models'::regclass AND NOT a.attisdropped
    AND (a.atttypid <> 'text'::regtype OR a.attgenerated <> '')
    AND a.attname IN ('pricing_prompt', 'pricing_completion', 'pricing_image', 'pricing_web_search');
  IF named IS NOT NULL THEN
    RAISE EXCEPTION 'Migration 006_rename_to_production_names moves ai_models.pricing into the text columns pricing_prompt, pricing_completion, pricing_image and pricing_web_search, as production''s x402_openrouter_models has them, and this database has such a column already that it cannot write: %. Nothing was changed. Make it a plain text column (ALTER TABLE ai_models ALTER COLUMN … TYPE text keeps its values; … DROP EXPRESSION keeps a generated column''s), then run the migrations again; until then the database stays at 005.',
      named;
  END IF;
  SELECT count(*), string_agg(format('%s (%s is %L, pricing says %L)', openrouter_id, col, held, said), '; ' ORDER BY openrouter_id, col) FILTER (WHERE n <= 20)
                     || CASE WHEN count(*) > 20 THEN format('; and %s more', count(*) - 20) ELSE '' END
    INTO found, named
  FROM (SELECT m.openrouter_id, k.col, k.held, k.said, row_number() OVER (ORDER BY m.openrouter_id, k.col) AS n
        FROM public.x402_openrouter_models m
        CROSS JOIN LATERAL (VALUES ('pricing_prompt', m.pricing_prompt, m.pricing ->> 'prompt'),
                                   ('pricing_completion', m.pricing_completion, m.pricing ->> 'completion'),
                                   ('pricing_image', m.pricing_image, m.pricing ->> 'image'),
                                   ('pricing_web_search', m.pricing_web_search, m.pricing ->> 'web_search')) AS k(col, held, said)
        -- The characters, whatever the column's collation: one that ignores case calls 'free' 'FREE'.
        WHERE k.held COLLATE "C" <> k.said COLLATE "C") AS conflict;
  IF found > 0 THEN
    RAISE EXCEPTION 'Migration 006_rename_to_production_names moves ai_models.pricing into the text columns pricing_prompt, pricing_completion, pricing_image and pricing_web_search, which this database had already, and % value(s) of them differ from the pricing object: %. Nothing was changed. Decide which value is right for each, make the column and its key in pricing agree on it, then run the migrations again; until then the database stays at 005.',
      found, named;
  END IF;
END
$conflicts$
  `.execute(db)
}

async function commentOnColumns(db: Kysely<any>, comments: Record<string, string>): Promise<void> {
  for (const [column, comment] of Object.entries(comments)) {
    await sql`COMMENT ON COLUMN ${sql.ref(`x402_openrouter_models.${column}`)} IS ${sql.lit(comment)}`.execute(db)
  }
}
