{#- Identity keys in one canonical form, so the same person matches across sources. -#}

{#- Phone: digits only; Russian 8XXXXXXXXXX → 7XXXXXXXXXX; a bare 10-digit number gets the 7 prefix.
    Anything shorter than 10 digits cannot identify anyone and becomes null. -#}
{% macro normalise_phone(expr) -%}
    (case
        when length(regexp_replace({{ expr }}, '[^0-9]', '', 'g')) = 11
            and left(regexp_replace({{ expr }}, '[^0-9]', '', 'g'), 1) = '8'
            then '7' || substr(regexp_replace({{ expr }}, '[^0-9]', '', 'g'), 2)
        when length(regexp_replace({{ expr }}, '[^0-9]', '', 'g')) = 10
            then '7' || regexp_replace({{ expr }}, '[^0-9]', '', 'g')
        when length(regexp_replace({{ expr }}, '[^0-9]', '', 'g')) between 11 and 15
            then regexp_replace({{ expr }}, '[^0-9]', '', 'g')
    end)
{%- endmacro %}

{#- Email: trimmed and lower-cased; strings without "@" are not emails. -#}
{% macro normalise_email(expr) -%}
    (case when position('@' in coalesce({{ expr }}, '')) > 1 then lower(trim({{ expr }})) end)
{%- endmacro %}

{#- A number from text that may hold anything; non-numbers become null instead of failing. -#}
{% macro to_numeric(expr) -%}
    (case
        when replace(replace(trim({{ expr }}), ' ', ''), ',', '.') ~ '^-?[0-9]+(\.[0-9]+)?$'
            then cast(replace(replace(trim({{ expr }}), ' ', ''), ',', '.') as numeric)
    end)
{%- endmacro %}

{#- Unix seconds (as JSON number or text) to timestamptz. -#}
{% macro unix_to_timestamp(expr) -%}
    (case when ({{ expr }}) ~ '^[0-9]+(\.[0-9]+)?$' then to_timestamp(cast({{ expr }} as double precision)) end)
{%- endmacro %}

{#- ISO-8601 text (Bitrix24) to timestamptz; empty strings are null. -#}
{% macro iso_to_timestamp(expr) -%}
    (case when ({{ expr }}) ~ '^\d{4}-\d{2}-\d{2}' then cast({{ expr }} as timestamptz) end)
{%- endmacro %}

{#- JSON array (or null / scalar) safely as an array for jsonb_array_elements. -#}
{% macro json_array(expr) -%}
    (case when jsonb_typeof({{ expr }}) = 'array' then {{ expr }} else '[]'::jsonb end)
{%- endmacro %}

