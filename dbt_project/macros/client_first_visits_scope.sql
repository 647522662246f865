{#- int_client_first_visits, pre-hook: the earliest visit date int_web_visits_filtered replaced
    from since this model last ran (the smallest visit date of the raw rows in the batches this
    model has not read, as int_web_visits_filtered finds it), and the stored first visits from
    that date on deleted. No new batch: no date, nothing deleted, nothing derived. -#}
{% macro client_first_visits_scope() -%}
    drop table if exists pg_temp.client_first_visits_scope;
    {%- if is_incremental() %}
    create temp table client_first_visits_scope on commit drop as
    select min(visit_date) as from_date
    from {{ raw_or('raw_metrica', 'visits', ref('stg_metrica__visits')) }}
    where _loaded_at >= {{ new_batches_since() }};
    delete from {{ this }}
    where visit_date >= (select from_date from pg_temp.client_first_visits_scope)
    {%- else %}
    select 1
    {%- endif %}
{%- endmacro %}
