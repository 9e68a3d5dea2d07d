/*
 * The way back after 005's down moved rows to x402_backup: a script the operator runs by hand, as
 * the database's owner, on the app's busiest table. So it checks and fences itself as a run does
 * (script-checks.ts): a trigger that a role with the TRIGGER privilege attached to x402_resources
 * or the keys table would otherwise run with the operator's power (review revc F1).
 */
import {
  actsAsSessionUser,
  CATALOG_CHECK_BEGIN,
  CATALOG_CHECK_DECLARE,
} from '../connection/shadowed-catalog.js'
import { STAMP_LENGTH } from '../migrator/down-guard.js'
import {
  migrationLockSql,
  privilegeChecks,
  SCRIPT_BEGIN,
  scriptTimeouts,
} from '../migrator/script-checks.js'

/** Where `npm run docs:migrations` keeps the script, in docs/migrations/. */
export const RESTORE_005_FILE = '005_add_openrouter_integration.restore.sql'

/** The one line a reader edits: the time in the name of the rollback's first backup. */
export const RESTORE_FROM_LINE = "SET LOCAL x402.restore_from = '<time>'"

/**
 * Puts back what 005's down moved into x402_backup: every backup of 005 stamped at or after
 * x402.restore_from, oldest first (one rollback may leave several: a resumed one, or keys stored
 * while it ran; review revc F2). Keys are inserted whole; resources of type openrouter_instant
 * are inserted, and the other resources get their two OpenRouter columns back. Columns are named
 * from the catalog, generated ones left out. Everything is qualified, on pg_catalog's search
 * path, so no operator or function of another schema answers (review revc F3).
 */
const RESTORE_BLOCK = `DO $restore$
DECLARE
  since CONSTANT pg_catalog.text := pg_catalog.current_setting('x402.restore_from', true);
  planned CONSTANT pg_catalog.regclass := pg_catalog.to_regclass('public.user_openrouter_integrations');
  renamed CONSTANT pg_catalog.regclass := pg_catalog.to_regclass('public.x402_user_openrouter_integrations');
  resources CONSTANT pg_catalog.regclass := pg_catalog.to_regclass('public.x402_resources');
  keys pg_catalog.regclass := COALESCE(renamed, planned);
  foreign_target pg_catalog.text;
  foreign_backup pg_catalog.text;
  backup record;
  columns pg_catalog.text;
  keys_columns pg_catalog.text;
  keys_sources pg_catalog.text;
  restored pg_catalog.text[] := '{}';
  kept pg_catalog.int8 := 0;
  gone pg_catalog.int8 := 0;
  counted pg_catalog.int8;
  counted_gone pg_catalog.int8;
  statement pg_catalog.text;
  ${CATALOG_CHECK_DECLARE}
BEGIN
  ${CATALOG_CHECK_BEGIN}
  PERFORM pg_catalog.set_config('search_path', 'pg_catalog', true);
  IF since IS NULL OR since !~ '^[0-9]{8}T[0-9]{9}$' THEN
    RAISE EXCEPTION 'x402.restore_from is %, not the time in the name of a backup of 005 (such as 20261205T141927175). '
      'Nothing was restored. Set it, in the line marked at the top, to the time of the rollback''s first backup, '
      'as the run that rolled back named it.', COALESCE(pg_catalog.quote_literal(since), 'not set');
  ELSIF planned IS NOT NULL AND renamed IS NOT NULL THEN
    RAISE EXCEPTION 'Both public.user_openrouter_integrations and public.x402_user_openrouter_integrations exist, and '
      'only one is the keys table of 005. Nothing was restored. Find out which one the app uses and who made the '
      'other, then run this again.';
  ELSIF keys IS NULL OR resources IS NULL THEN
    RAISE EXCEPTION '005 is not applied: its keys table is missing. Nothing was restored. Apply it again first '
      '(npm run migrate:up, or migrate:latest), then run this again.';
  END IF;
  -- What it writes must be tables whose owner can already act as you: a view's INSTEAD OF trigger,
  -- or a lesser role's table, would run code, or take the keys, with your power (review revd F2).
  SELECT pg_catalog.string_agg(pg_catalog.format('%s (%s, owned by %s)', c.oid::pg_catalog.regclass,
           CASE WHEN c.relkind OPERATOR(pg_catalog.=) ANY ('{r,p}') THEN 'a table' ELSE 'not a table' END,
           pg_catalog.pg_get_userbyid(c.relowner)), '; ')
    INTO foreign_target
    FROM pg_catalog.pg_class c
   WHERE c.oid OPERATOR(pg_catalog.=) ANY (ARRAY[keys, resources]::pg_catalog.oid[])
     AND (c.relkind OPERATOR(pg_catalog.<>) ALL ('{r,p}') OR NOT ${actsAsSessionUser('c.relowner')});
  IF foreign_target IS NOT NULL THEN
    RAISE EXCEPTION USING ERRCODE = '42501', MESSAGE = pg_catalog.format(
      'The restore would write %s, which is not a table whose owner can already act as you. Nothing was restored. '
      'Find out who made it and why, then apply 005 again (npm run migrate:up) and run this again.', foreign_target);
  END IF;
  SELECT pg_catalog.string_agg(pg_catalog.quote_ident(a.attname), ', ' ORDER BY a.attnum) INTO keys_columns
    FROM pg_catalog.pg_attribute a
   WHERE a.attrelid OPERATOR(pg_catalog.=) keys AND a.attnum OPERATOR(pg_catalog.>) 0
     AND NOT a.attisdropped AND a.attgenerated OPERATOR(pg_catalog.=) '';
  SELECT pg_catalog.string_agg(pg_catalog.quote_ident(a.attname), ', ' ORDER BY a.attnum) INTO columns
    FROM pg_catalog.pg_attribute a
   WHERE a.attrelid OPERATOR(pg_catalog.=) resources AND a.attnum OPERATOR(pg_catalog.>) 0
     AND NOT a.attisdropped AND a.attgenerated OPERATOR(pg_catalog.=) '';
  -- What it reads must be backups whose owner can already act as you, as the downs make them:
  -- another's decides the rows it restores, and its columns' types the code their casts run with
  -- your power. The checks above refuse such an owner, and a role that may create tables in
  -- x402_backup; the loop below reads no other, whenever it was made (review revf F3).
  SELECT pg_catalog.string_agg(pg_catalog.format('%s (owned by %s)', c.oid::pg_catalog.regclass,
           pg_catalog.pg_get_userbyid(c.relowner)), '; ' ORDER BY c.relname)
    INTO foreign_backup
    FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
   WHERE n.nspname OPERATOR(pg_catalog.=) 'x402_backup'
     AND c.relname ~ '^005_(user_openrouter_integrations|x402_resources)_[0-9]{8}T[0-9]{9}$'
     AND pg_catalog.right(c.relname, ${STAMP_LENGTH}) OPERATOR(pg_catalog.>=) since
     AND NOT ${actsAsSessionUser('c.relowner')};
  IF foreign_backup IS NOT NULL THEN
    RAISE EXCEPTION USING ERRCODE = '42501', MESSAGE = pg_catalog.format(
      'The restore would read %s, which is not a backup whose owner can already act as you: its owner decides '
      'what it restores, and its columns could run code with your power. Nothing was restored. Find out who made it '
      'and why, drop it, and run this again.', foreign_backup);
  END IF;
  FOR backup IN
    SELECT c.oid::pg_catalog.regclass AS source, c.relname ~ '^005_x402_resources_' AS resources,
           pg_catalog.right(c.relname, ${STAMP_LENGTH}) AS stamp
      FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
     WHERE n.nspname OPERATOR(pg_catalog.=) 'x402_backup' AND c.relkind OPERATOR(pg_catalog.=) 'r'
       AND c.relname ~ '^005_(user_openrouter_integrations|x402_resources)_[0-9]{8}T[0-9]{9}$'
       AND pg_catalog.right(c.relname, ${STAMP_LENGTH}) OPERATOR(pg_catalog.>=) since
       AND ${actsAsSessionUser('c.relowner')}
     ORDER BY pg_catalog.right(c.relname, ${STAMP_LENGTH}), c.relname
  LOOP
    restored := pg_catalog.array_append(restored, backup.source::pg_catalog.text);
    IF NOT backup.resources THEN
      -- Keys are put back together below, the newest of each user's.
      keys_sources := COALESCE(keys_sources OPERATOR(pg_catalog.||) ' UNION ALL ', '') OPERATOR(pg_catalog.||)
        pg_catalog.format('SELECT %s, %L AS x402_stamp FROM %s', keys_columns, backup.stamp, backup.source);
      CONTINUE;
    END IF;
    statement := pg_catalog.format('INSERT INTO %s (%s) OVERRIDING SYSTEM VALUE SELECT %s FROM %s '
                                   'WHERE resource_type OPERATOR(pg_catalog.=) %L',
                                   resources, columns, columns, backup.source, 'openrouter_instant');
    -- Written qualified above; the tables' own triggers then run on your search_path, as on any write.
    PERFORM pg_catalog.set_config('search_path', saved, true);
    EXECUTE statement;
    PERFORM pg_catalog.set_config('search_path', 'pg_catalog', true);
    -- The other resources get their two columns back where they are still empty: a value set
    -- since 005 was applied again is newer, and stays (counted below, as are rows deleted since).
    EXECUTE pg_catalog.format('SELECT pg_catalog.count(*) FILTER (WHERE r.id IS NULL), '
                              'pg_catalog.count(*) FILTER (WHERE r.openrouter_model_id IS NOT NULL OR r.openrouter_config IS NOT NULL) '
                              'FROM %s b LEFT JOIN %s r ON r.id OPERATOR(pg_catalog.=) b.id '
                              'WHERE b.resource_type OPERATOR(pg_catalog.<>) %L', backup.source, resources, 'openrouter_instant')
      INTO counted_gone, counted;
    gone := gone OPERATOR(pg_catalog.+) counted_gone;
    kept := kept OPERATOR(pg_catalog.+) counted;
    statement := pg_catalog.format('UPDATE %s r SET openrouter_model_id = b.openrouter_model_id, '
                                   'openrouter_config = b.openrouter_config FROM %s b '
                                   'WHERE r.id OPERATOR(pg_catalog.=) b.id AND b.resource_type OPERATOR(pg_catalog.<>) %L '
                                   'AND r.openrouter_model_id IS NULL AND r.openrouter_config IS NULL',
                                   resources, backup.source, 'openrouter_instant');
    PERFORM pg_catalog.set_config('search_path', saved, true);
    EXECUTE statement;
    PERFORM pg_catalog.set_config('search_path', 'pg_catalog', true);
  END LOOP;
  IF pg_catalog.cardinality(restored) OPERATOR(pg_catalog.=) 0 THEN
    RAISE EXCEPTION 'x402_backup has no backup of 005 stamped % or later. Nothing was restored.', since;
  END IF;
  -- A user who stored a key again while the rollback stood has one in two backups (review revd F3).
  IF keys_sources IS NOT NULL THEN
    statement := pg_catalog.format('INSERT INTO %s (%s) OVERRIDING SYSTEM VALUE SELECT DISTINCT ON (user_id) %s '
                                   'FROM (%s) b ORDER BY user_id, x402_stamp DESC',
                                   keys, keys_columns, keys_columns, keys_sources);
  END IF;
  PERFORM pg_catalog.set_config('search_path', saved, true);
  IF keys_sources IS NOT NULL THEN
    EXECUTE statement;
  END IF;
  RAISE NOTICE '%', pg_catalog.format('Restored from %s.%s%s The backups stay: drop them once the rows are checked.',
    pg_catalog.array_to_string(restored, ', '),
    CASE WHEN kept OPERATOR(pg_catalog.>) 0
         THEN pg_catalog.format(' %s resource(s) kept the OpenRouter values set since 005 was applied again.', kept) ELSE '' END,
    CASE WHEN gone OPERATOR(pg_catalog.>) 0
         THEN pg_catalog.format(' %s resource(s) of the backups were deleted since, and stay deleted.', gone) ELSE '' END);
END
$restore$`

/**
 * The restore script of 005's backups, as docs/migrations/ keeps it: one transaction with the
 * runner's bounds, its migration lock and privilege checks (which also lock the tables it writes
 * against new triggers), the one line to edit, then the restore.
 *
 * @example
 * ```ts
 * writeFileSync(`docs/migrations/${RESTORE_005_FILE}`, restoreScriptOf005())
 * ```
 */
export function restoreScriptOf005(): string {
  return [
    '-- Puts back what the down of 005_add_openrouter_integration moved to schema x402_backup (docs/rollback.md).',
    '-- Written by `npm run docs:migrations` from src/export/restore-005-script.ts. Apply 005 again first',
    '-- (npm run migrate:up, or migrate:latest), then edit the one marked line and run this with psql -f or in',
    '-- the Supabase SQL Editor. It is one transaction: where any part fails, nothing of it stays.',
    '-- It refuses (SQLSTATE 42501) where roles that cannot act as you could have their code run with your power.',
    // At READ COMMITTED whatever the defaults: the fenced check refuses at any other level (review revo O5).
    `${SCRIPT_BEGIN};`,
    ...[...scriptTimeouts(), ...privilegeChecks(true, [migrationLockSql])].map(
      (statement) => `${statement};`,
    ),
    "-- The time in the name of the rollback's first backup, as the run named it: every backup of 005 stamped",
    '-- then or later is restored (a rollback that was resumed, or that met keys stored while it ran, leaves several).',
    `${RESTORE_FROM_LINE};`,
    `${RESTORE_BLOCK};`,
    'COMMIT;',
    '',
  ].join('\n')
}
