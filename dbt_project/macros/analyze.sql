{#- Post-hook of every model: refresh the planner's statistics of what was just built, when it
    is a table. A fresh CTAS has no statistics, so the next model's planner guesses row counts
    of joins and group-bys (a guess of 31 rows for 12,580 picked a nested loop that made
    int_party_records_collected quadratic: 0.8 s at demo scale, 103 s at 5x). Views need none.

    An incremental night changes a sliver of a large table (49 k of 6.8 M episodes at medium),
    where ANALYZE still samples the whole table (2.5 s): incremental models are analyzed only
    when they have no statistics (first build, full refresh) or when the rows changed since the
    last ANALYZE — tonight's, counted in pg_stat_xact_user_tables, plus earlier nights' — reach
    5 % of the table. Autovacuum's own analyze (at 10 %) remains. -#}
{% macro analyze_if_table() -%}
    {%- if model.config.materialized == 'table' -%}
    analyze {{ this }}
    {%- elif model.config.materialized == 'incremental' -%}
    {%- set relation = "'" ~ adapter.quote(this.schema) ~ "." ~ adapter.quote(this.identifier) ~ "'::regclass" -%}
    do $analyze$
    begin
        if not exists (select 1 from pg_stats
                       where schemaname = '{{ this.schema }}' and tablename = '{{ this.identifier }}')
           or (select coalesce(tonight.n_tup_ins + tonight.n_tup_upd + tonight.n_tup_del, 0)
                      + coalesce(earlier.n_mod_since_analyze, 0)
               from pg_class
               left join pg_stat_xact_user_tables as tonight on tonight.relid = pg_class.oid
               left join pg_stat_user_tables as earlier on earlier.relid = pg_class.oid
               where pg_class.oid = {{ relation }})
              > 0.05 * (select greatest(reltuples, 0) from pg_class where oid = {{ relation }})
        then
            analyze {{ this }};
        end if;
    end
    $analyze$
    {%- else -%}
    select 1
    {%- endif -%}
{%- endmacro %}
