"""Stand-ins for dbt's cross-database macros (``dbt.dateadd(...)``) when sqlfluff renders the
models with its jinja templater: SQL of the same shape, so the linter sees valid SQL. Never used
by dbt itself."""


def dateadd(datepart, interval, from_date_or_timestamp):
    return f"({from_date_or_timestamp} + interval ({interval}) {datepart})"


def datediff(first_date, second_date, datepart):
    return f"date_diff('{datepart}', {first_date}, {second_date})"


def date_trunc(datepart, date):
    return f"date_trunc('{datepart}', {date})"


def generate_series(upper_bound):
    return f"select generate_series as generated_number from generate_series(1, {upper_bound})"


def split_part(string_text, delimiter_text, part_number):
    return f"split_part({string_text}, {delimiter_text}, {part_number})"
