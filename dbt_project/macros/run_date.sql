{#- The observation end ("today") of a run: var run_date, else the database's current_date.
    Models never call now(), so a rebuild for the same run_date gives the same marts. -#}
{% macro run_date() -%}
    {%- set value = var('run_date', none) -%}
    {%- if value is none or value == '' -%}
    current_date
    {%- else -%}
    cast('{{ value }}' as date)
    {%- endif -%}
{%- endmacro %}

{#- Length of the BG/NBD time unit in days (var churn_time_unit: 'week' or 'day'). -#}
{% macro churn_unit_days() -%}
    {%- set unit = var('churn_time_unit', 'week') -%}
    {%- if unit == 'week' -%}7.0{%- elif unit == 'day' -%}1.0{%- else -%}
    {{ exceptions.raise_compiler_error("churn_time_unit must be 'week' or 'day', got " ~ unit) }}
    {%- endif -%}
{%- endmacro %}

{#- Local calendar date of an instant in the business time zone. -#}
{% macro local_date(expr) -%}
    cast(({{ expr }}) at time zone '{{ var("business_timezone") }}' as date)
{%- endmacro %}
