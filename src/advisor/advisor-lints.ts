/**
 * Supabase's advisor lints, re-implemented as catalog queries: each lint keeps the conditions of
 * the splinter lint of the same name (https://github.com/supabase/splinter, lints/*.sql, Apache
 * License 2.0, read in November 2026) and leaves out its messages, which are the module's own.
 * Lints about configuration or about things the module never meets (Auth settings, storage
 * buckets, queues, replication slots, pg_graphql, extension versions, table bloat) are not here.
 *
 * Several lints read `pgrst.db_schemas`, the schemas PostgREST exposes, as the dashboard sets it
 * in the transaction it runs them in; runAdvisor does the same.
 */

/** How serious a finding is, as the dashboard's Advisors rank them. */
export type AdvisorLevel = 'ERROR' | 'WARN' | 'INFO'

/** The dashboard's two advisors: Security, and Performance. */
export type AdvisorCategory = 'security' | 'performance'

/**
 * What a lint needs of the database before it can run: the API roles (`anon`, `authenticated`)
 * whose privileges it asks about, or Supabase Auth's `auth.users`. Without them it is skipped.
 */
export type LintRequirement = 'api roles' | 'auth.users'

/** One lint: its splinter name, level, advisor, what it needs, the remedy, and its query. */
export interface AdvisorLint {
  name: string
  level: AdvisorLevel
  category: AdvisorCategory
  needs: readonly LintRequirement[]
  /**
   * One or two sentences: how to close a finding without giving anyone more access; `…` stands
   * for the finding's target.
   */
  remedy: string
  /**
   * A query with one row per finding: schema_name, object_name (the object splinter names: the
   * table of a policy), detail (text or null) and target (the SQL name the remedy acts on).
   */
  query: string
}

// Supabase's own schemas and those of extensions, which the lints leave out (splinter's list).
const SYSTEM_SCHEMAS = `('_timescaledb_cache', '_timescaledb_catalog', '_timescaledb_config',
  '_timescaledb_internal', 'auth', 'cron', 'extensions', 'graphql', 'graphql_public',
  'information_schema', 'net', 'pgmq', 'pgroonga', 'pgsodium', 'pgsodium_masks', 'pgtle',
  'pgbouncer', 'pg_catalog', 'realtime', 'repack', 'storage', 'supabase_functions',
  'supabase_migrations', 'tiger', 'topology', 'vault')`

const SYSTEM = (schema: string) =>
  `${schema} not in ${SYSTEM_SCHEMAS} and ${schema} !~ '^pg_(temp|toast)'`

/** A schema that PostgREST serves, as the transaction's `pgrst.db_schemas` lists them. */
const EXPOSED = (schema: string) =>
  `${schema} = any (array(select trim(unnest(
     string_to_array(current_setting('pgrst.db_schemas', true), ',')))))`

/** A relation that anon or authenticated may SELECT from. */
const API_READABLE = (oid: string) =>
  `(pg_catalog.has_table_privilege('anon', ${oid}, 'SELECT')
    or pg_catalog.has_table_privilege('authenticated', ${oid}, 'SELECT'))`

/** Not an object that an extension owns. */
const NOT_EXTENSION = (oid: string) =>
  `not exists (select from pg_catalog.pg_depend e where e.objid = ${oid} and e.deptype = 'e')`

/** A view that runs with the caller's rights. */
const INVOKER = (relation: string) =>
  `(lower(coalesce(${relation}.reloptions::text, '{}'))::text[]
    && array['security_invoker=1', 'security_invoker=true', 'security_invoker=yes',
             'security_invoker=on'])`

const TRUE_EXPRESSIONS = `('true', '(true)', '1=1', '(1=1)')`

/**
 * A lint of relations of one `relkind` that anon or authenticated may read through the API:
 * they have no row level security.
 */
function relationInApi(name: string, relkind: 'm' | 'f', what: string): AdvisorLint {
  return {
    name,
    level: 'WARN',
    category: 'security',
    needs: ['api roles'],
    remedy:
      `Revoke SELECT on it from anon and authenticated (${what} has no row level ` +
      'security), or move it to a schema PostgREST does not expose.',
    query: `
select n.nspname::text as schema_name, c.relname::text as object_name, null::text as detail,
       format('%I.%I', n.nspname, c.relname) as target
from pg_catalog.pg_class c
join pg_catalog.pg_namespace n on n.oid = c.relnamespace
where c.relkind = '${relkind}' and ${EXPOSED('n.nspname')} and ${SYSTEM('n.nspname')}
  and ${API_READABLE('c.oid')}
  and ${NOT_EXTENSION('c.oid')}`,
  }
}

/** The lints, Security first, then Performance; within each by splinter's number. */
export const ADVISOR_LINTS: readonly AdvisorLint[] = [
  {
    // 0002
    name: 'auth_users_exposed',
    level: 'ERROR',
    category: 'security',
    needs: ['api roles', 'auth.users'],
    remedy:
      'Revoke SELECT on the view from anon and authenticated, or move it to a schema PostgREST ' +
      'does not expose; read auth.users through a column of your own table (e.g. profiles) ' +
      'instead.',
    query: `
select distinct n.nspname::text as schema_name, c.relname::text as object_name,
       case c.relkind when 'm' then 'materialized view over auth.users'
                      else 'view over auth.users' end as detail,
       format('%I.%I', n.nspname, c.relname) as target
from pg_catalog.pg_class u
join pg_catalog.pg_namespace un
  on un.oid = u.relnamespace and un.nspname = 'auth' and u.relname = 'users'
join pg_catalog.pg_depend d on d.refobjid = u.oid and d.deptype = 'n'
join pg_catalog.pg_rewrite r on r.oid = d.objid
join pg_catalog.pg_class c on c.oid = r.ev_class
join pg_catalog.pg_namespace n on n.oid = c.relnamespace
where c.relkind in ('v', 'm') and ${EXPOSED('n.nspname')} and ${API_READABLE('c.oid')}
  and (c.relkind = 'm' or not ${INVOKER('c')} or not u.relrowsecurity)`,
  },
  {
    // 0007
    name: 'policy_exists_rls_disabled',
    level: 'ERROR',
    category: 'security',
    needs: [],
    remedy:
      'ALTER TABLE … ENABLE ROW LEVEL SECURITY, after checking that the policies give each role ' +
      'only the rows it should reach: until then they protect nothing.',
    query: `
select n.nspname::text as schema_name, c.relname::text as object_name,
       'policies: ' || string_agg(p.polname::text, ', ' order by p.polname) as detail,
       format('%I.%I', n.nspname, c.relname) as target
from pg_catalog.pg_policy p
join pg_catalog.pg_class c on c.oid = p.polrelid
join pg_catalog.pg_namespace n on n.oid = c.relnamespace
where c.relkind = 'r' and not c.relrowsecurity and ${SYSTEM('n.nspname')}
  and ${NOT_EXTENSION('c.oid')}
group by n.nspname, c.relname`,
  },
  {
    // 0008
    name: 'rls_enabled_no_policy',
    level: 'INFO',
    category: 'security',
    needs: [],
    remedy:
      'Nothing to do if only service_role should reach the table (RLS on and no policy denies ' +
      'everyone else); otherwise add a policy for each role and action the app needs.',
    query: `
select n.nspname::text as schema_name, c.relname::text as object_name, null::text as detail,
       format('%I.%I', n.nspname, c.relname) as target
from pg_catalog.pg_class c
join pg_catalog.pg_namespace n on n.oid = c.relnamespace
where c.relkind = 'r' and c.relrowsecurity and ${SYSTEM('n.nspname')}
  and ${NOT_EXTENSION('c.oid')}
  and not exists (select from pg_catalog.pg_policy p where p.polrelid = c.oid)`,
  },
  {
    // 0010
    name: 'security_definer_view',
    level: 'ERROR',
    category: 'security',
    needs: ['api roles'],
    remedy:
      "ALTER VIEW … SET (security_invoker = on), so that it reads with the caller's rights and " +
      'row level security; or revoke SELECT on it from anon and authenticated.',
    query: `
select n.nspname::text as schema_name, c.relname::text as object_name, null::text as detail,
       format('%I.%I', n.nspname, c.relname) as target
from pg_catalog.pg_class c
join pg_catalog.pg_namespace n on n.oid = c.relnamespace
where c.relkind = 'v' and current_setting('server_version_num')::int >= 150000
  and ${EXPOSED('n.nspname')} and ${SYSTEM('n.nspname')} and ${API_READABLE('c.oid')}
  and ${NOT_EXTENSION('c.oid')} and not ${INVOKER('c')}`,
  },
  {
    // 0011
    name: 'function_search_path_mutable',
    level: 'WARN',
    category: 'security',
    needs: [],
    remedy:
      "ALTER FUNCTION … SET search_path = '' and schema-qualify the names it uses (or SET " +
      "search_path = pg_catalog, public): then a caller's search_path cannot swap the objects " +
      'it calls.',
    query: `
select n.nspname::text as schema_name, p.proname::text as object_name,
       p.proname::text || '(' || pg_catalog.pg_get_function_identity_arguments(p.oid) || ')'
         || case when p.prosecdef then ', SECURITY DEFINER' else '' end as detail,
       p.oid::pg_catalog.regprocedure::text as target
from pg_catalog.pg_proc p
join pg_catalog.pg_namespace n on n.oid = p.pronamespace
where ${SYSTEM('n.nspname')} and ${NOT_EXTENSION('p.oid')}
  and not exists (select from unnest(coalesce(p.proconfig, '{}')) as setting
                  where setting like 'search_path=%')`,
  },
  {
    // 0013
    name: 'rls_disabled_in_public',
    level: 'ERROR',
    category: 'security',
    needs: ['api roles'],
    remedy:
      'ALTER TABLE … ENABLE ROW LEVEL SECURITY, then add a policy for each role and action the ' +
      'app needs (none, where only service_role should reach it).',
    query: `
select n.nspname::text as schema_name, c.relname::text as object_name, null::text as detail,
       format('%I.%I', n.nspname, c.relname) as target
from pg_catalog.pg_class c
join pg_catalog.pg_namespace n on n.oid = c.relnamespace
where c.relkind = 'r' and not c.relrowsecurity
  and ${EXPOSED('n.nspname')} and ${SYSTEM('n.nspname')} and ${API_READABLE('c.oid')}`,
  },
  {
    // 0014
    name: 'extension_in_public',
    level: 'WARN',
    category: 'security',
    needs: [],
    remedy:
      'ALTER EXTENSION … SET SCHEMA extensions (where the extension allows it), so that the API ' +
      'does not expose its objects.',
    query: `
select 'public'::text as schema_name, x.extname::text as object_name, 'extension'::text as detail,
       format('%I', x.extname) as target
from pg_catalog.pg_extension x
join pg_catalog.pg_namespace n on n.oid = x.extnamespace
where n.nspname = 'public' and x.extname <> 'plpgsql'`,
  },
  {
    // 0015
    name: 'rls_references_user_metadata',
    level: 'ERROR',
    category: 'security',
    needs: [],
    remedy:
      'Rewrite the policy without user_metadata, which every user may edit: use app_metadata or ' +
      'a table of your own that only service_role writes.',
    query: `
select pol.schemaname::text as schema_name, pol.tablename::text as object_name,
       'policy ' || pol.policyname::text as detail,
       format('%I.%I', pol.schemaname, pol.tablename) as target
from pg_catalog.pg_policies pol
where ${SYSTEM('pol.schemaname')}
  and (coalesce(pol.qual, '') like '%auth.jwt()%user_metadata%'
       or coalesce(pol.qual, '') like '%current_setting(%request.jwt.claims%)%user_metadata%'
       or coalesce(pol.with_check, '') like '%auth.jwt()%user_metadata%'
       or coalesce(pol.with_check, '')
            like '%current_setting(%request.jwt.claims%)%user_metadata%')`,
  },
  relationInApi('materialized_view_in_api', 'm', 'a materialized view'), // 0016
  relationInApi('foreign_table_in_api', 'f', 'a foreign table'), // 0017
  {
    // 0023
    name: 'sensitive_columns_exposed',
    level: 'ERROR',
    category: 'security',
    needs: ['api roles'],
    remedy:
      'ALTER TABLE … ENABLE ROW LEVEL SECURITY with policies for the rows each role may read, ' +
      'or revoke SELECT from anon and authenticated; keep secrets encrypted, out of columns the ' +
      'API can read.',
    query: `
select n.nspname::text as schema_name, c.relname::text as object_name,
       'columns: ' || string_agg(a.attname::text, ', ' order by a.attname) as detail,
       format('%I.%I', n.nspname, c.relname) as target
from pg_catalog.pg_class c
join pg_catalog.pg_namespace n on n.oid = c.relnamespace
join pg_catalog.pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
where c.relkind = 'r' and not c.relrowsecurity
  and ${EXPOSED('n.nspname')} and ${SYSTEM('n.nspname')} and ${API_READABLE('c.oid')}
  and replace(lower(a.attname), '-', '_') in (
    'password', 'passwd', 'pwd', 'passphrase', 'secret', 'secret_key', 'private_key', 'api_key',
    'apikey', 'auth_key', 'token', 'jwt', 'access_token', 'refresh_token', 'oauth_token',
    'session_token', 'bearer_token', 'auth_code', 'session_id', 'session_key', 'session_secret',
    'recovery_code', 'backup_code', 'verification_code', 'otp', 'two_factor', '2fa_secret',
    '2fa_code', 'ssn', 'social_security', 'social_security_number', 'driver_license',
    'drivers_license', 'license_number', 'passport_number', 'passport_id', 'national_id', 'tax_id',
    'credit_card', 'card_number', 'cvv', 'cvc', 'cvn', 'bank_account', 'account_number',
    'routing_number', 'iban', 'swift_code', 'bic', 'health_record', 'medical_record', 'patient_id',
    'insurance_number', 'health_insurance', 'medical_insurance', 'treatment', 'mac_address',
    'macaddr', 'imei', 'device_uuid', 'pgp_key', 'gpg_key', 'ssh_key', 'certificate',
    'license_key', 'activation_key', 'facial_recognition')
group by n.nspname, c.relname`,
  },
  {
    // 0024
    name: 'rls_policy_always_true',
    level: 'WARN',
    category: 'security',
    needs: [],
    remedy:
      'Give the policy a condition on the row (e.g. (select auth.uid()) = user_id), or name ' +
      'only the roles that may write every row (TO service_role).',
    query: `
select pol.schemaname::text as schema_name, pol.tablename::text as object_name,
       'policy ' || pol.policyname::text || ' (' || pol.cmd || ')' as detail,
       format('%I.%I', pol.schemaname, pol.tablename) as target
from pg_catalog.pg_policies pol
join pg_catalog.pg_namespace n on n.nspname = pol.schemaname
join pg_catalog.pg_class c on c.relnamespace = n.oid and c.relname = pol.tablename
cross join lateral (
  select regexp_replace(lower(coalesce(pol.qual, '')), '\\s', '', 'g') as q,
         regexp_replace(lower(coalesce(pol.with_check, '')), '\\s', '', 'g') as w) as norm
where c.relkind = 'r' and c.relrowsecurity and pol.permissive = 'PERMISSIVE'
  and ${SYSTEM('pol.schemaname')}
  and (pol.roles && array['public', 'anon', 'authenticated']::name[])
  and ((pol.cmd in ('UPDATE', 'DELETE', 'ALL')
        and (norm.q in ${TRUE_EXPRESSIONS} or pol.qual is null))
       or norm.w in ${TRUE_EXPRESSIONS}
       or (pol.with_check is null and pol.cmd = 'INSERT')
       or (pol.with_check is null and pol.cmd in ('UPDATE', 'ALL')
           and norm.q in ${TRUE_EXPRESSIONS}))`,
  },
  ...(['anon', 'authenticated'] as const).map((role): AdvisorLint => ({
    // 0028, 0029
    name: `${role}_security_definer_function_executable`,
    level: 'WARN',
    category: 'security',
    needs: ['api roles'],
    remedy:
      `REVOKE EXECUTE ON FUNCTION … FROM PUBLIC, ${role}, and grant it only to the roles that ` +
      'need it (service_role), or make it SECURITY INVOKER.',
    query: `
select n.nspname::text as schema_name, p.proname::text as object_name,
       p.proname::text || '(' || pg_catalog.pg_get_function_identity_arguments(p.oid) || ')'
         as detail,
       p.oid::pg_catalog.regprocedure::text as target
from pg_catalog.pg_proc p
join pg_catalog.pg_namespace n on n.oid = p.pronamespace
where p.prosecdef and pg_catalog.has_function_privilege('${role}', p.oid, 'EXECUTE')
  and ${SYSTEM('n.nspname')}`,
  })),
  {
    // 0001
    name: 'unindexed_foreign_keys',
    level: 'INFO',
    category: 'performance',
    needs: [],
    remedy:
      "CREATE INDEX CONCURRENTLY on the foreign key's columns, in their order, where rows of " +
      'the referenced table are deleted or joined.',
    query: `
select n.nspname::text as schema_name, c.relname::text as object_name,
       'foreign key ' || k.conname::text as detail,
       format('%I.%I', n.nspname, c.relname) as target
from pg_catalog.pg_constraint k
join pg_catalog.pg_class c on c.oid = k.conrelid
join pg_catalog.pg_namespace n on n.oid = c.relnamespace
where k.contype = 'f' and ${SYSTEM('n.nspname')} and ${NOT_EXTENSION('c.oid')}
  and not exists (select from pg_catalog.pg_index i
                  where i.indrelid = c.oid and i.indisvalid
                    and (string_to_array(i.indkey::text, ' ')::smallint[])[1:cardinality(k.conkey)]
                        = k.conkey)`,
  },
  {
    // 0003
    name: 'auth_rls_initplan',
    level: 'WARN',
    category: 'performance',
    needs: [],
    remedy:
      'Write (select auth.uid()) in place of auth.uid() (likewise jwt, role, email), so that it ' +
      'is evaluated once per statement.',
    query: `
select pol.schemaname::text as schema_name, pol.tablename::text as object_name,
       'policy ' || pol.policyname::text as detail,
       format('%I.%I', pol.schemaname, pol.tablename) as target
from pg_catalog.pg_policies pol
join pg_catalog.pg_namespace n on n.nspname = pol.schemaname
join pg_catalog.pg_class c on c.relnamespace = n.oid and c.relname = pol.tablename
where c.relrowsecurity and ${SYSTEM('pol.schemaname')}
  and ((pol.qual ~ 'auth\\.(uid|jwt|role|email)\\(\\)'
        and lower(pol.qual) !~ 'select\\s+auth\\.(uid|jwt|role|email)\\(\\)')
       or (pol.with_check ~ 'auth\\.(uid|jwt|role|email)\\(\\)'
           and lower(pol.with_check) !~ 'select\\s+auth\\.(uid|jwt|role|email)\\(\\)'))`,
  },
  {
    // 0004
    name: 'no_primary_key',
    level: 'INFO',
    category: 'performance',
    needs: [],
    remedy:
      'Add a primary key (ALTER TABLE … ADD PRIMARY KEY USING INDEX, after a concurrent unique ' +
      'index).',
    query: `
select n.nspname::text as schema_name, c.relname::text as object_name, null::text as detail,
       format('%I.%I', n.nspname, c.relname) as target
from pg_catalog.pg_class c
join pg_catalog.pg_namespace n on n.oid = c.relnamespace
where c.relkind = 'r' and ${SYSTEM('n.nspname')} and ${NOT_EXTENSION('c.oid')}
  and not exists (select from pg_catalog.pg_index i where i.indrelid = c.oid and i.indisprimary)`,
  },
  {
    // 0005
    name: 'unused_index',
    level: 'INFO',
    category: 'performance',
    needs: [],
    remedy:
      'Nothing on a fresh database, where no index was used yet. On production after weeks of ' +
      'traffic, consider DROP INDEX CONCURRENTLY.',
    query: `
select s.schemaname::text as schema_name, s.relname::text as object_name,
       'index ' || s.indexrelname::text as detail,
       format('%I.%I', s.schemaname, s.indexrelname) as target
from pg_catalog.pg_stat_user_indexes s
join pg_catalog.pg_index i on i.indexrelid = s.indexrelid
where s.idx_scan = 0 and not i.indisunique and not i.indisprimary and ${SYSTEM('s.schemaname')}
  and ${NOT_EXTENSION('s.relid')}`,
  },
  {
    // 0006
    name: 'multiple_permissive_policies',
    level: 'WARN',
    category: 'performance',
    needs: [],
    remedy:
      'Merge the permissive policies for that role and action into one (their conditions joined ' +
      'with OR).',
    query: `
select n.nspname::text as schema_name, c.relname::text as object_name,
       r.rolname::text || ' ' || act.cmd || ': '
         || string_agg(p.polname::text, ', ' order by p.polname) as detail,
       format('%I.%I', n.nspname, c.relname) as target
from pg_catalog.pg_policy p
join pg_catalog.pg_class c on c.oid = p.polrelid
join pg_catalog.pg_namespace n on n.oid = c.relnamespace
join pg_catalog.pg_roles r on p.polroles @> array[r.oid] or p.polroles = array[0::oid]
cross join lateral unnest(case p.polcmd when 'r' then array['SELECT'] when 'a' then array['INSERT']
                            when 'w' then array['UPDATE'] when 'd' then array['DELETE']
                            else array['SELECT', 'INSERT', 'UPDATE', 'DELETE'] end) as act(cmd)
where c.relkind = 'r' and p.polpermissive and ${SYSTEM('n.nspname')} and ${NOT_EXTENSION('c.oid')}
  and r.rolname not like 'pg\\_%' and r.rolname not like 'supabase%admin' and not r.rolbypassrls
group by n.nspname, c.relname, r.rolname, act.cmd
having count(*) > 1`,
  },
  {
    // 0009
    name: 'duplicate_index',
    level: 'WARN',
    category: 'performance',
    needs: [],
    remedy: 'DROP INDEX CONCURRENTLY all of them but one.',
    query: `
select n.nspname::text as schema_name, c.relname::text as object_name,
       'indexes ' || string_agg(ic.relname::text, ', ' order by ic.relname) as detail,
       format('%I.%I', n.nspname, c.relname) as target
from pg_catalog.pg_index i
join pg_catalog.pg_class c on c.oid = i.indrelid
join pg_catalog.pg_class ic on ic.oid = i.indexrelid
join pg_catalog.pg_namespace n on n.oid = c.relnamespace
where c.relkind in ('r', 'm') and ${SYSTEM('n.nspname')} and ${NOT_EXTENSION('c.oid')}
group by n.nspname, c.relname, i.indkey::text, i.indclass::text, i.indisunique,
         coalesce(pg_catalog.pg_get_expr(i.indexprs, i.indrelid), ''),
         coalesce(pg_catalog.pg_get_expr(i.indpred, i.indrelid), '')
having count(*) > 1`,
  },
  {
    // 0030
    name: 'invalid_index',
    level: 'WARN',
    category: 'performance',
    needs: [],
    remedy:
      'DROP INDEX CONCURRENTLY the invalid index and build it again with CREATE INDEX ' +
      'CONCURRENTLY.',
    query: `
select n.nspname::text as schema_name, c.relname::text as object_name,
       'index ' || ic.relname::text as detail,
       format('%I.%I', n.nspname, ic.relname) as target
from pg_catalog.pg_index i
join pg_catalog.pg_class ic on ic.oid = i.indexrelid
join pg_catalog.pg_class c on c.oid = i.indrelid
join pg_catalog.pg_namespace n on n.oid = c.relnamespace
where not i.indisvalid and ${SYSTEM('n.nspname')}`,
  },
]

/** The names of every lint, for the accepted-findings file's check. */
export const ADVISOR_LINT_NAMES: readonly string[] = ADVISOR_LINTS.map((lint) => lint.name)

/**
 * The lints of `lints` as one query (their union), with columns lint, level, schema_name,
 * object_name, detail, target; the form the dashboard runs them in.
 *
 * @example
 * ```ts
 * const text = advisorLintsSql(ADVISOR_LINTS.filter((lint) => lint.category === 'security'))
 * ```
 */
export function advisorLintsSql(lints: readonly AdvisorLint[] = ADVISOR_LINTS): string {
  return lints
    .map(
      (lint) =>
        `select '${lint.name}'::text as lint, '${lint.level}'::text as level, found.*\n` +
        `from (${lint.query}\n) as found`,
    )
    .join('\nunion all\n')
}
