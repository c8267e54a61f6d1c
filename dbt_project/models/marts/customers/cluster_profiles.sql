select * from {{ source('analytics', 'cluster_profiles') }}
