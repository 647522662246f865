{#- Custom schemas are used verbatim (stg, int, marts_build, ref_data, snapshots), not prefixed
    with the target schema, so publishing and BI can rely on fixed names. -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}{{ target.schema }}{%- else -%}{{ custom_schema_name | trim }}{%- endif -%}
{%- endmacro %}
