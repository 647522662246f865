{#- SQL functions the marts need, created by on-run-start in schema `udf`.

    cw_hyp2f1(a, b, c, z): the Gaussian hypergeometric function ₂F₁ for 0 <= z < 1, used by the
    BG/NBD expected-purchases formula. The series for ₂F₁(r+x, b+x; a+b+x-1; z) converges slowly
    for frequent buyers (its terms first grow roughly like x·z), so the function applies Euler's
    transformation ₂F₁(a,b;c;z) = (1-z)^(c-a-b) ₂F₁(c-a, c-b; c; z) when it shrinks the first
    parameters, then sums terms until they fall below 1e-15 of the sum (at most 100000 terms). -#}
{% macro create_udfs() %}
    create schema if not exists udf;
    create or replace function udf.cw_hyp2f1(a double precision, b double precision,
                                             c double precision, z double precision)
    returns double precision
    language plpgsql immutable strict parallel safe
    as $fn$
    declare
        aa double precision := a;
        bb double precision := b;
        factor double precision := 1.0;
        term double precision := 1.0;
        total double precision := 1.0;
        n integer := 0;
    begin
        if z < 0 or z >= 1 then
            raise exception 'cw_hyp2f1 needs 0 <= z < 1, got %', z;
        end if;
        if abs(c - a) + abs(c - b) < abs(a) + abs(b) then
            factor := power(1.0 - z, c - a - b);
            aa := c - a;
            bb := c - b;
        end if;
        loop
            term := term * (aa + n) * (bb + n) / ((c + n) * (n + 1)) * z;
            total := total + term;
            n := n + 1;
            exit when abs(term) <= 1e-15 * abs(total) or n >= 100000;
        end loop;
        return factor * total;
    end;
    $fn$;
{% endmacro %}
