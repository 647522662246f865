{#- Post-hook of every model: refresh the planner's statistics of what was just built, when it
    is a table. A fresh CTAS has no statistics, so the next model's planner guesses row counts
    of joins and group-bys (a guess of 31 rows for 12,580 picked a nested loop that made
    int_party_records_collected quadratic: 0.8 s at demo scale, 103 s at 5x). Views need none. -#}
{% macro analyze_if_table() -%}
    {%- if model.config.materialized in ('table', 'incremental') -%}
    analyze {{ this }}
    {%- else -%}
    select 1
    {%- endif -%}
{%- endmacro %}
