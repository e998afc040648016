"""Messages by id."""

from churnsaver.backend.channels.models import Message
from churnsaver.backend.channels.repository import MessageRepository
from churnsaver.graphql.dataloaders.by_id import RowsById


class MessageLoader(RowsById[Message]):
    repository = MessageRepository
