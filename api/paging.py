"""firstResult / maxResults as Camunda uses them."""


def page(stmt, args):
    stmt = stmt.offset(args.get("firstResult") or 0)
    if args.get("maxResults") is not None:
        stmt = stmt.limit(args["maxResults"])
    return stmt
