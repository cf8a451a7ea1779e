// Buggy: up drops the default of users.role (roles are now given on invite) and adds an index;
// down drops the index but forgets to put the default 'member' back.
module.exports = class InviteOnlyRoles1700000000003 {
  async up(queryRunner) {
    await queryRunner.query("ALTER TABLE users ALTER COLUMN role DROP DEFAULT");
    await queryRunner.query("CREATE INDEX users_role_idx ON users (role)");
  }

  async down(queryRunner) {
    await queryRunner.query("DROP INDEX users_role_idx");
  }
};
